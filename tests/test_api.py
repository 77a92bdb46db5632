"""The JSON API beside the chat page, over real HTTP: shapes, errors as JSON 4xx, origins and framing."""
import httpx
import pytest

from conftest import DEFAULT_DATA, start_server, stop

ALLOWED = "http://allowed.example"


@pytest.fixture(scope="module")
def restricted_app(served_app, served_index):
    """A second server over the same index that lets only ALLOWED call the API or frame its pages."""
    url, proc = start_server(served_index, QA_ALLOWED_ORIGINS=ALLOWED)
    yield url
    stop(proc)


def test_ask_returns_the_ask_json(served_app):
    r = httpx.post(served_app + "api/ask", json={"question": "Who directs the Secretariat?"}, timeout=30)
    assert r.status_code == 200
    out = r.json()
    assert set(out) >= {"question", "answer", "abstained", "citations"} and not out["abstained"]
    c = out["citations"][0]
    text = (DEFAULT_DATA / c["source"]).read_text(encoding="utf-8")
    assert text[c["start"]:c["end"]] == c["text"] and "Secretary General" in c["text"]


def test_ask_follows_up_with_history(served_app):
    r = httpx.post(served_app + "api/ask", timeout=30, json={
        "question": "When was it created?", "history": ["What does the Conflict Prevention Centre do?"], "k": 3})
    assert r.status_code == 200 and "Created in 1990" in r.json()["citations"][0]["text"]


def test_search_and_health(served_app):
    r = httpx.get(served_app + "api/search", params={"q": "police forces", "k": 2}, timeout=30)
    assert r.status_code == 200
    out = r.json()
    assert out["query"] == "police forces" and [h["rank"] for h in out["hits"]] == [1, 2]
    assert set(out["hits"][0]) == {"rank", "score", "chunk_id", "source", "section", "start", "end", "text"}
    health = httpx.get(served_app + "api/health", timeout=30).json()
    assert health["status"] == "ok" and health["files"] == 1 and health["chunks"] >= 1
    assert health["model"] == "all-MiniLM-L6-v2" and health["built_at"]


def test_openapi_docs_are_served(served_app):
    assert httpx.get(served_app + "docs", timeout=30).status_code == 200
    spec = httpx.get(served_app + "openapi.json", timeout=30).json()
    assert {"/api/ask", "/api/search", "/api/health"} <= set(spec["paths"])


@pytest.mark.parametrize("method,path,payload,status,words", [
    ("post", "api/ask", {"question": ""}, 400, "Please type a question"),
    ("post", "api/ask", {"question": " \n\t "}, 400, "Please type a question"),
    ("post", "api/ask", {"question": "why? " * 5000}, 413, "too long"),
    ("post", "api/ask", {"question": "Vienna?", "k": 0}, 400, "k must be between 1 and 20"),
    ("post", "api/ask", {"question": "Vienna?", "k": 1000}, 400, "k must be between 1 and 20"),
    ("post", "api/ask", {"question": 42}, 422, "invalid question"),
    ("post", "api/ask", {"question": "Vienna?", "k": True}, 422, "invalid k"),
    ("post", "api/ask", {}, 422, "invalid question"),
    ("post", "api/ask", {"question": "Vienna?", "history": "not a list"}, 422, "invalid history"),
    ("post", "api/ask", {"question": "Vienna?", "history": [{"role": "user", "content": 5}]}, 400, "history must be"),
    ("get", "api/search", {"q": "Vienna", "k": -1}, 400, "k must be between 1 and 100"),
    ("get", "api/search", {"q": "Vienna", "k": "many"}, 422, "invalid k"),
    ("get", "api/search", {"q": "   "}, 400, "Please type a question"),
    ("get", "api/ask", None, 405, "Use POST /api/ask"),
    ("post", "api/search", {"q": "x"}, 405, "Use GET /api/search"),
    ("get", "api/nothing/here", None, 404, "No such route"),
])
def test_bad_requests_get_json_4xx(served_app, method, path, payload, status, words):
    if method == "post":
        r = httpx.post(served_app + path, json=payload, timeout=30)
    else:
        r = httpx.get(served_app + path, params=payload, timeout=30)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


def test_a_long_question_is_trimmed_with_a_notice(served_app):
    r = httpx.post(served_app + "api/ask", json={"question": "Who directs the Secretariat? " + "x" * 3000}, timeout=30)
    assert r.status_code == 200 and "trimmed" in r.json()["notice"]


def test_a_body_that_is_not_json_is_a_422(served_app):
    r = httpx.post(served_app + "api/ask", content=b"{nope", headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 422 and r.json()["error"] == "The request body is not valid JSON."


def test_by_default_any_origin_may_use_the_api_and_frame_the_chat(served_app):
    r = httpx.get(served_app + "api/health", headers={"Origin": "http://anywhere.example"}, timeout=30)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    assert httpx.get(served_app + "embed", timeout=30).headers["content-security-policy"] == "frame-ancestors *"


def test_only_allowed_origins_may_use_the_api_or_frame_the_pages(restricted_app):
    ok = httpx.post(restricted_app + "api/ask", json={"question": "Who directs the Secretariat?"},
                    headers={"Origin": ALLOWED}, timeout=30)
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ALLOWED
    refused = httpx.post(restricted_app + "api/ask", json={"question": "Who directs the Secretariat?"},
                         headers={"Origin": "http://evil.example"}, timeout=30)
    assert refused.status_code == 403 and "origin" in refused.json()["error"]
    assert "access-control-allow-origin" not in refused.headers
    preflight = httpx.options(restricted_app + "api/ask", timeout=30, headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers and preflight.status_code == 403
    for page in ("embed", ""):
        csp = httpx.get(restricted_app + page, timeout=30).headers["content-security-policy"]
        assert csp == f"frame-ancestors 'self' {ALLOWED}"
    assert httpx.get(restricted_app + "api/health", timeout=30).status_code == 200  # no Origin: curl, scripts


def test_the_page_is_served_before_the_index_is_ready_and_the_first_question_waits(tmp_path):
    import os
    import subprocess
    import sys
    import time

    from conftest import ROOT, free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    # an empty cache: the encoder is exported first (torch, several seconds), so the start is slow for sure
    env.update({"QA_DATA": str(DEFAULT_DATA), "QA_INDEX": str(tmp_path / "index"), "QA_PORT": str(port),
                "QA_CACHE": str(tmp_path / "cache")})
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "qa", "serve"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:  # no index yet: the page comes up while the first build runs
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "server.log").read_text()
            time.sleep(0.05)
        health = httpx.get(url + "api/health", timeout=30)
        assert (health.status_code, health.json()["status"]) == (503, "starting")
        assert health.headers["retry-after"]
        r = httpx.post(url + "api/ask", json={"question": "Who directs the Secretariat?"}, timeout=60)  # waits
        assert r.status_code == 200 and "Secretary General" in r.json()["answer"]
        assert httpx.get(url + "api/health", timeout=30).json()["status"] == "ok"
    finally:
        stop(proc)
    text = (tmp_path / "server.log").read_text()
    assert text.index("starting at http://") < text.index("ready: 5 chunks")


def test_a_start_up_that_fails_stops_the_server_with_one_line(tmp_path):
    import os
    import subprocess
    import sys

    from conftest import ROOT, free_port

    (tmp_path / "empty").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update({"QA_DATA": str(tmp_path / "empty"), "QA_INDEX": str(tmp_path / "index"), "QA_PORT": str(free_port())})
    r = subprocess.run([sys.executable, "-m", "qa", "serve"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1].startswith("error: no readable document (.txt, .md, .rst, .html, .pdf, .docx, .jsonl) in ")
    assert "Traceback" not in r.stderr


def test_overload_gets_a_quick_429_busy_retry_not_a_time_out(served_app, served_index):
    """One answering slot (so 16 may wait): a burst of 150 slow questions at once gets answers and 429s
    with Retry-After, nothing else, and no request waits past the server's busy limit."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    url, proc = start_server(served_index, QA_MAX_CONCURRENT="1")
    question = "What does the OSCE do about " + " and ".join(["borders", "police", "trafficking"] * 60) + "?"

    def ask(_):
        t = time.perf_counter()
        r = httpx.post(url + "api/ask", json={"question": question, "k": 20}, timeout=60)
        return r, time.perf_counter() - t

    try:
        with ThreadPoolExecutor(150) as pool:
            results = list(pool.map(ask, range(150)))
    finally:
        stop(proc)
    statuses = [r.status_code for r, _ in results]
    assert set(statuses) == {200, 429}, statuses
    busy = next(r for r, _ in results if r.status_code == 429)
    assert busy.headers["retry-after"] == "2" and "busy" in busy.json()["error"]
    assert max(seconds for _, seconds in results) < 30
