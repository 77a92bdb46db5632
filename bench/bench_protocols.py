"""Benchmark: what the OpenAI-compatible endpoint and the MCP server cost on top of answering.

    python bench/bench_protocols.py [--rounds 20]

On the default corpus, one running server, one keep-alive client, the same questions in turn:
- POST /api/ask and POST /v1/chat/completions, interleaved: p50 of each and the difference (the protocol's
  overhead; the target is under 5 ms);
- the MCP tool ask_documents over streamable HTTP (/mcp) and over stdio (`qa mcp`): p50 per call.
Vectors of repeated questions are cached by the server, so the first round is left out of every figure.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, cpu_flags, free_port, jsonl_texts, temp_dir  # noqa: E402

QUESTIONS = jsonl_texts(ROOT / "eval" / "osce" / "queries.jsonl")[:10]


def _env(index: str, port: int | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(QA_DATA=str(ROOT / "data"), QA_INDEX=index)
    if port:
        env["QA_PORT"] = str(port)
    return env


def _start(index: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "qa", "serve"], cwd=ROOT, env=_env(index, port),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    sys.exit("error: the server did not become ready within 300 s")


def _http(url: str, rounds: int) -> tuple[list[float], list[float]]:
    api, openai = [], []
    with httpx.Client(timeout=60) as client:
        for r in range(rounds):
            for q in QUESTIONS:
                for path, body, times in (("/api/ask", {"question": q}, api),
                                          ("/v1/chat/completions", {"model": "data", "messages": [
                                              {"role": "user", "content": q}]}, openai)):
                    t = time.perf_counter()
                    response = client.post(url + path, json=body)
                    elapsed = time.perf_counter() - t
                    response.raise_for_status()
                    if r:
                        times.append(elapsed)
    return api, openai


async def _mcp(target, rounds: int) -> list[float]:
    from mcp import Client

    times = []
    async with Client(target, read_timeout_seconds=300) as client:
        for r in range(rounds):
            for q in QUESTIONS:
                t = time.perf_counter()
                result = await client.call_tool("ask_documents", {"question": q})
                elapsed = time.perf_counter() - t
                if result.is_error:
                    sys.exit(f"error: ask_documents failed: {result.content[0].text}")
                if r:
                    times.append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20, help="passes over the 10 questions (the first is warm-up)")
    args = parser.parse_args()
    index = str(Path(temp_dir("bench-protocols-")) / "index")
    proc, url = _start(index)
    try:
        api, openai = _http(url, args.rounds)
        mcp_http = anyio.run(_mcp, url + "/mcp", args.rounds)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    from mcp.client.stdio import StdioServerParameters

    stdio = StdioServerParameters(command=sys.executable, args=["-m", "qa", "mcp"], env=_env(index), cwd=str(ROOT))
    mcp_stdio = anyio.run(_mcp, stdio, args.rounds)
    ms = lambda xs: f"{1000 * statistics.median(xs):.1f} ms"  # noqa: E731
    print(f"cpu: {cpu_flags()}; {len(api)} timed calls each, one client, default corpus")
    print(f"POST /api/ask               p50 {ms(api)}")
    paired = statistics.median(o - a for o, a in zip(openai, api))  # the same question, one right after the other
    print(f"POST /v1/chat/completions   p50 {ms(openai)}   difference of p50s "
          f"{1000 * (statistics.median(openai) - statistics.median(api)):+.1f} ms, median paired "
          f"difference {1000 * paired:+.1f} ms")
    print(f"MCP ask_documents over HTTP p50 {ms(mcp_http)}")
    print(f"MCP ask_documents on stdio  p50 {ms(mcp_stdio)}")


if __name__ == "__main__":
    main()
