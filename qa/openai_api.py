"""The OpenAI-compatible chat API's shapes (POST /v1/chat/completions, GET /v1/models).

A chat completion request becomes a question (the last user message) and its history (the turns before it);
an Answer becomes a chat.completion, or the chat.completion.chunk events of a stream. The reply's content is
the cited answer with its [n] markers and a short Sources list; the structured citations travel in an extra
top-level field, "citations" (in a stream: on the last chunk).
"""
from __future__ import annotations

import json
import secrets
import time
from typing import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import BadQuestion, openai_error as error_body
from .records import Answer

STREAM_PIECE_WORDS = 8  # a stream sends the reply in pieces of about this many words


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens, ...: accepted and ignored
    model: str = Field(default="", description="any name: there is one model, the collection")
    messages: list[ChatMessage] = Field(description="the conversation, oldest first; the last is the question")
    stream: bool = False


def message_text(message: ChatMessage) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(message.content, str):
        return message.content
    parts = []
    for part in message.content or []:
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            parts.append(part["text"])
        elif isinstance(part, str):
            parts.append(part)
    return "\n".join(parts)


def question_and_history(messages: list[ChatMessage]) -> tuple[str, list[dict]]:
    """The question (the last message, which must be the user's) and the earlier user and assistant turns."""
    turns = [m for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise BadQuestion("The last message must be the user's question (role \"user\").")
    history = [{"role": m.role, "content": message_text(m)} for m in turns[:-1]]
    return message_text(turns[-1]), history


def reply_text(answer: Answer) -> str:
    """The answer with its [n] markers, then one Sources line per citation: file, line, section."""
    if not answer.citations:
        return answer.answer
    lines = [answer.answer, "", "Sources:"]
    for c in answer.citations:
        page = f", page {c.page}" if c.page else ""
        section = f" ({c.section})" if c.section else ""
        lines.append(f"[{c.n}] {c.source}{page}, line {c.line}{section}")
    return "\n".join(lines)


def completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def completion(answer: Answer, model: str) -> dict:
    """A chat.completion object."""
    return {"id": completion_id(), "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply_text(answer)},
                         "finish_reason": "stop"}],
            "citations": [c.to_json() for c in answer.citations]}


def _pieces(text: str) -> Iterator[str]:
    words = text.split(" ")
    for i in range(0, len(words), STREAM_PIECE_WORDS):
        piece = " ".join(words[i:i + STREAM_PIECE_WORDS])
        yield piece if i + STREAM_PIECE_WORDS >= len(words) else piece + " "


def stream_events(answer: Answer, model: str) -> Iterator[str]:
    """Server-sent events in the official chunk format: the role, the content in pieces, the finish (with the
    citations), then [DONE]."""
    base = {"id": completion_id(), "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

    def event(delta: dict, finish: str | None = None, **extra) -> str:
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    for piece in _pieces(reply_text(answer)):
        yield event({"content": piece})
    yield event({}, "stop", citations=[c.to_json() for c in answer.citations])
    yield "data: [DONE]\n\n"


def models(name: str) -> dict:
    return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "qa"}]}



def router(gate, assistant, max_chars: int):
    """The /v1 routes; questions go through the server's gate (gate.py), errors in OpenAI's shape."""
    routes = APIRouter()

    def name() -> str:
        return assistant.config.data_dir.name or "documents"

    def shape(status: int, message: str) -> dict:
        kind = {400: "invalid_request_error", 429: "rate_limit_error"}.get(status, "server_error")
        return error_body(message, kind)

    @routes.get("/v1/models", summary="OpenAI-compatible: the one model, named after the collection")
    def list_models():
        return models(name())

    @routes.post("/v1/chat/completions", summary="OpenAI-compatible chat: the cited answer to the last user message")
    async def chat_completions(request: Request):
        try:
            body = ChatRequest.model_validate_json(await request.body())
            question, history = question_and_history(body.messages)
        except ValidationError as e:
            first = e.errors()[0] if e.errors() else {}
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            return JSONResponse(error_body(f"invalid {where}: {first.get('msg', 'bad value')}"), status_code=400)
        except BadQuestion as e:
            return JSONResponse(error_body(str(e)), status_code=400)
        if len(question) > max_chars:
            return JSONResponse(error_body(f"The question is too long (over {max_chars} characters)."), status_code=413)
        outcome = await gate.answered(lambda: assistant.ask(question, history=history), shape)
        if outcome.status != 200:
            return JSONResponse(outcome.body, status_code=outcome.status)
        if body.stream:
            return StreamingResponse(stream_events(outcome.body, name()), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        return completion(outcome.body, name())

    @routes.api_route("/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def unknown(rest: str):
        return JSONResponse(error_body(f"No such route: /v1/{rest}; this server has /v1/models and "
                                       "/v1/chat/completions.", code="unknown_url"), status_code=404)

    return routes
