"""The MCP server, driven by the official mcp SDK's client: over stdio (`qa mcp`) and streamable HTTP (/mcp)."""
from __future__ import annotations

import json
import os
import sys

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from conftest import DEFAULT_DATA, DEFAULT_FILE, ROOT

QUESTION = "Who directs the Secretariat?"


async def _exercise(target) -> dict:
    """List the tools, search, ask, and ask badly; return what came back."""
    async with Client(target, read_timeout_seconds=120) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        search = await client.call_tool("search_documents", {"query": "police forces", "k": 2})
        ask = await client.call_tool("ask_documents", {"question": QUESTION})
        empty = await client.call_tool("ask_documents", {"question": "  "})
        too_many = await client.call_tool("search_documents", {"query": "police", "k": 500})
    return {"tools": tools, "search": search, "ask": ask, "empty": empty, "too_many": too_many}


def _run(target) -> dict:
    """_exercise on a thread of its own: the session's browser (Playwright's sync API) keeps an event loop
    running on this one."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, _exercise, target).result()


def _check(out: dict) -> None:
    assert set(out["tools"]) == {"search_documents", "ask_documents"}
    assert "question" in out["tools"]["ask_documents"].input_schema["properties"]
    hits = out["search"].structured_content["hits"]
    assert [h["rank"] for h in hits] == [1, 2] and {"source", "section", "start", "end"} <= set(hits[0])
    ask = out["ask"]
    assert not ask.is_error
    answer = ask.structured_content
    assert json.loads(ask.content[0].text) == answer  # the text form is the same JSON, for clients without structure
    assert "Secretary General" in answer["answer"] and not answer["abstained"]
    c = answer["citations"][0]
    text = DEFAULT_FILE.read_text(encoding="utf-8")
    assert c["source"] == "osce_overview.txt" and "section" in c and text[c["start"]:c["end"]] == c["text"]
    assert out["empty"].is_error and "question" in out["empty"].content[0].text.lower()
    assert out["too_many"].is_error and "k must be between" in out["too_many"].content[0].text


def test_mcp_over_stdio(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update({"QA_DATA": str(DEFAULT_DATA), "QA_INDEX": str(tmp_path / "index"), "QA_DEVICE": "cpu"})
    params = StdioServerParameters(command=sys.executable, args=["-m", "qa", "mcp"], env=env, cwd=str(ROOT))
    _check(_run(params))


def test_mcp_over_http(served_app):
    _check(_run(served_app + "mcp"))
