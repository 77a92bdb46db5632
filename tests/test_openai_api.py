"""The OpenAI-compatible endpoint, driven by the official openai client against the real server."""
from __future__ import annotations

import httpx
import openai
import pytest

from conftest import DEFAULT_FILE

QUESTION = "Who directs the Secretariat?"


@pytest.fixture(scope="module")
def client(served_app):
    return openai.OpenAI(base_url=served_app + "v1", api_key="not-needed-without-QA_ACCESS_TOKEN", max_retries=0,
                         timeout=60)


def test_one_model_named_after_the_collection(client):
    models = client.models.list().data
    assert [m.id for m in models] == ["data"]  # the default corpus lives in data/


def test_a_completion_is_the_cited_answer_with_sources(client):
    r = client.chat.completions.create(model="data", messages=[{"role": "user", "content": QUESTION}])
    content = r.choices[0].message.content
    assert r.object == "chat.completion" and r.choices[0].finish_reason == "stop"
    assert "Secretary General" in content and "[1]" in content
    assert "Sources:" in content and "[1] osce_overview.txt, line " in content
    citations = r.model_extra["citations"]
    text = DEFAULT_FILE.read_text(encoding="utf-8")
    first = citations[0]
    assert first["source"] == "osce_overview.txt" and "section" in first
    assert text[first["start"]:first["end"]] == first["text"]
    plain = httpx.post(str(client.base_url).replace("/v1/", "/api/ask"), json={"question": QUESTION}, timeout=60)
    assert plain.json()["citations"] == citations  # the same answer as /api/ask


def test_streaming_gives_the_same_reply_in_official_chunks(client):
    whole = client.chat.completions.create(model="data", messages=[{"role": "user", "content": QUESTION}])
    chunks = list(client.chat.completions.create(model="data", stream=True,
                                                 messages=[{"role": "user", "content": QUESTION}]))
    assert len(chunks) >= 3 and all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"] == whole.model_extra["citations"]


def test_earlier_turns_are_the_follow_up_history(client):
    r = client.chat.completions.create(model="data", messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What does the Conflict Prevention Centre do?"},
        {"role": "assistant", "content": "It supports the Chairperson..."},
        {"role": "user", "content": [{"type": "text", "text": "When was it created?"}]}])
    assert "Created in 1990" in r.model_extra["citations"][0]["text"]


def test_bad_requests_get_one_clear_message(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="data", messages=[{"role": "assistant", "content": "Hello"}])
    assert "last message must be the user's question" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="data", messages=[{"role": "user", "content": "   "}])
    assert "question" in e.value.body["message"].lower() and e.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError) as e:
        client.embeddings.create(model="data", input="x")
    assert "/v1/chat/completions" in str(e.value)


def test_an_unanswerable_question_says_so_without_sources(client):
    r = client.chat.completions.create(model="data", messages=[
        {"role": "user", "content": "What is the airspeed velocity of an unladen swallow?"}])
    assert r.model_extra["citations"] == [] and "Sources:" not in r.choices[0].message.content
