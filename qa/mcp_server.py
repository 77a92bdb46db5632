"""The MCP server (the official mcp SDK): tools search_documents and ask_documents, over stdio (`qa mcp`) or
streamable HTTP at /mcp (mounted by server.py).

Each tool returns the same JSON as /api/search and /api/ask: every hit and citation with its file, offsets,
line and section. A bad question or an assistant that cannot answer is a tool error with one clear message.
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import anyio

from . import __version__
from .assistant import Assistant
from .errors import BadQuestion, Busy, QAError, told

Work = Callable[[], Any]
Gate = Callable[[Work], Awaitable[Any]]  # runs blocking work off the event loop (the server's gate limits how many)
log = logging.getLogger("qa.server")
INSTRUCTIONS = ("Answers questions from the user's own documents. ask_documents gives a cited answer (or says "
                "the documents do not say); search_documents lists the passages closest to a query. Each citation "
                "names its file, character offsets, line and section.")


async def in_thread(work: Work) -> Any:
    return await anyio.to_thread.run_sync(work)


def build_mcp(assistant: Assistant, gate: Gate = in_thread):
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    server = MCPServer(name="qa", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")
    root.handlers[:], root.level = handlers, level  # it calls logging.basicConfig: the app's logging stays ours

    async def run(work: Work) -> dict:
        try:
            return await gate(work)
        except BadQuestion as e:
            raise ToolError(str(e)) from None
        except Busy as e:
            raise ToolError(e.public) from None
        except QAError as e:
            raise ToolError(told(e)) from None
        except Exception:  # never the exception's text: it may name the server's paths
            log.exception("an MCP tool call failed")
            raise ToolError("Something went wrong on the server. Please try again.") from None

    @server.tool(description="The passages of the documents closest to a query, best first: each with its file "
                 "(source), character offsets (start, end), line, section and text.")
    async def search_documents(query: str, k: int = 5) -> dict[str, Any]:
        return await run(lambda: {"query": query, "hits": [h.to_json() for h in assistant.search(query, k)]})

    @server.tool(description="An answer to a question from the documents, with numbered citations [n]: each "
                 "citation gives the file (source), character offsets (start, end), line, section and the exact "
                 "cited text. abstained is true when the documents do not say.")
    async def ask_documents(question: str) -> dict[str, Any]:
        return await run(lambda: assistant.ask(question).to_json())

    return server
