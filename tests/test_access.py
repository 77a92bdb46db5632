"""Access control (QA_ACCESS_TOKEN): every route of the running app, enumerated from the app's own route table,
refuses without credentials unless the README's table says it is public, and works with them."""
from __future__ import annotations

import re

import httpx
import pytest
from starlette.routing import Mount, Route, WebSocketRoute

from conftest import DEFAULT_DATA, start_server, stop
from qa.late import Late
from qa.access import MAX_FAILURES, SESSION_SECONDS, Attempts, Sessions

TOKEN = "access-token-for-tests-0123"
ADMIN = "admin-token-for-tests-4567"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def expected(path: str, public_widget: bool, method: str) -> str:
    """The README's table, written out again here: what a route must be sent when protection is on."""
    if (method, path) == ("POST", "/api/documents"):
        return "admin"
    if (method, path) in {("GET", "/login"), ("POST", "/login"), ("GET", "/logout"), ("GET", "/api/health")}:
        return "public"
    if path == "/mcp" or path.startswith("/v1"):
        return "bearer"
    if public_widget and (method, path) in {("GET", "/widget.js"), ("GET", "/embed"), ("POST", "/embed/ask"),
                                            ("GET", "/embed/about")}:
        return "public"
    if path in ("/embed/ask", "/embed/about"):
        return "either"
    if path.startswith("/api/") or path in ("/docs", "/openapi.json") or path.startswith("/docs-assets"):
        return "either"
    return "login"


def _routes(app, prefix: str = ""):
    """(path, method) of every route, mounted apps included; path parameters filled with a placeholder."""
    for r in app.routes:
        if hasattr(r, "original_router"):  # FastAPI's include_router
            yield from _routes(r.original_router, prefix + getattr(r.include_context, "prefix", ""))
            continue
        path = re.sub(r"\{[^}]+\}", "x", prefix + r.path)
        if isinstance(r, Mount):
            mounted = r.app.build() if isinstance(r.app, Late) else r.app  # the chat page, built in the background
            if getattr(mounted, "routes", None) is not None:
                yield from _routes(mounted, prefix + r.path)
            else:
                yield (path.rstrip("/") or "/") + "/x", "GET"
        elif isinstance(r, WebSocketRoute):
            yield path, "WEBSOCKET"
        elif isinstance(r, Route) or hasattr(r, "methods"):
            for method in sorted((r.methods or {"GET"}) - {"HEAD", "OPTIONS"}):
                yield path or "/", method


@pytest.fixture(scope="module")
def route_table(tmp_path_factory):
    from qa.assistant import Assistant
    from qa.config import build_config
    from qa.server import create_app

    config = build_config({"QA_ACCESS_TOKEN": TOKEN, "QA_ADMIN_TOKEN": ADMIN}, data_dir=DEFAULT_DATA,
                          index_dir=tmp_path_factory.mktemp("unused-index"))
    table = sorted(set(_routes(create_app(Assistant(config), config))))
    assert len(table) > 30 and ("/", "GET") in table and ("/v1/chat/completions", "POST") in table
    return table


@pytest.fixture(scope="module")
def protected(served_index, served_app):
    url, proc = start_server(served_index, QA_ACCESS_TOKEN=TOKEN, QA_ADMIN_TOKEN=ADMIN)
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def widget_public(served_index, served_app):
    url, proc = start_server(served_index, QA_ACCESS_TOKEN=TOKEN, QA_PUBLIC_WIDGET="1", QA_ADMIN_TOKEN=ADMIN)
    yield url
    stop(proc)


def _login(url: str) -> dict:
    r = httpx.post(url + "login", data={"token": TOKEN, "next": "/"}, timeout=30)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert "httponly" in r.headers["set-cookie"].lower() and "samesite=lax" in r.headers["set-cookie"].lower()
    return dict(r.cookies)


def _refused(url: str, path: str, method: str, headers=None, cookies=None) -> bool:
    """Whether the access guard refused the request: a 401 asking for credentials, or a redirect to the login
    page (a route's own refusal, such as a wrong admin token, is not the guard's). A stream that starts and
    does not end got through."""
    try:
        with httpx.Client(cookies=cookies, timeout=httpx.Timeout(15, read=8)) as client:
            with client.stream(method, url.rstrip("/") + path, headers=headers or {}) as r:
                return (r.status_code == 401 and r.headers.get("www-authenticate") == "Bearer") or \
                    (r.status_code == 303 and r.headers.get("location", "").startswith("/login"))
    except httpx.ReadTimeout:
        return False


@pytest.mark.parametrize("public_widget", [False, True])
def test_every_route_refuses_without_credentials_and_works_with_them(route_table, protected, widget_public,
                                                                     public_widget):
    url = widget_public if public_widget else protected
    cookies = _login(url)
    assert _refused(url, "/", "GET") and not _refused(url, "/", "GET", cookies=cookies)  # the check can tell
    wrong = []
    for path, method in route_table:
        if method == "WEBSOCKET":
            continue  # Gradio 6 serves none; the guard closes any websocket without a session
        need = expected(path, public_widget, method)
        if _refused(url, path, method) != (need not in ("public", "admin")):
            wrong.append((path, method, need, "without credentials"))
        if need in ("bearer", "either") and _refused(url, path, method, headers=BEARER):
            wrong.append((path, method, need, "refused the bearer token"))
        if need in ("login", "either") and _refused(url, path, method, cookies=cookies):
            wrong.append((path, method, need, "refused the session"))
        if need == "bearer" and not _refused(url, path, method, cookies=cookies):
            wrong.append((path, method, need, "took a session where only the token is allowed"))
        if need == "login" and not _refused(url, path, method, headers=BEARER):
            wrong.append((path, method, need, "took a bearer token where a login is needed"))
    assert not wrong, "\n".join(map(str, wrong))


@pytest.mark.parametrize("method, path", [("PUT", "/login"), ("DELETE", "/api/health"), ("PATCH", "/logout"),
                                          ("OPTIONS", "/api/documents"), ("HEAD", "/api/documents"),
                                          ("OPTIONS", "/api/ask"), ("DELETE", "/widget.js"), ("PUT", "/embed/ask")])
def test_a_public_route_is_public_only_for_the_methods_it_serves(widget_public, method, path):
    assert _refused(widget_public, path, method)  # not passed on to the chat page's catch-all


def test_a_browser_is_sent_to_the_login_page_and_back(protected):
    page = httpx.get(protected + "?x=1", headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/%3Fx%3D1"
    form = httpx.get(protected + "login?next=/%3Fx%3D1", timeout=30)
    assert form.status_code == 200 and 'type="password"' in form.text and 'value="/?x=1"' in form.text
    bad = httpx.post(protected + "login", data={"token": "wrong", "next": "/"}, timeout=30)
    assert bad.status_code == 401 and "not right" in bad.text and "set-cookie" not in bad.headers
    evil = httpx.post(protected + "login", data={"token": TOKEN, "next": "//evil.example/"}, timeout=30)
    assert evil.headers["location"] == "/"  # never off the site
    chat = httpx.get(protected, cookies=_login(protected), headers={"Accept": "text/html"}, timeout=30)
    assert chat.status_code == 200 and "gradio" in chat.text.lower()


def test_health_shows_its_details_only_with_credentials(protected):
    assert httpx.get(protected + "api/health", timeout=30).json() == {"status": "ok"}
    assert httpx.get(protected + "api/health", headers=BEARER, timeout=30).json()["chunks"] > 0


def test_the_token_answers_the_api_and_uploads_still_need_the_admin_token(protected):
    r = httpx.post(protected + "api/ask", json={"question": "Who directs the Secretariat?"}, headers=BEARER,
                   timeout=60)
    assert r.status_code == 200 and r.json()["citations"]
    upload = httpx.post(protected + "api/documents", files=[("files", ("a.txt", b"x"))], headers=BEARER, timeout=30)
    assert upload.status_code == 401 and "admin token" in upload.json()["error"]
    refused = httpx.post(protected + "v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]},
                         timeout=30)
    assert refused.status_code == 401 and "Bearer" in refused.json()["error"]["message"]  # OpenAI's error shape


def test_a_public_widget_asks_through_its_own_route_only(widget_public):
    js = httpx.get(widget_public + "widget.js", timeout=30)
    embed = httpx.get(widget_public + "embed", timeout=30)
    assert js.status_code == 200 and embed.status_code == 200 and 'fetch("embed/ask"' in embed.text
    asked = httpx.post(widget_public + "embed/ask", json={"question": "Who directs the Secretariat?"}, timeout=60)
    assert asked.status_code == 200 and asked.json()["citations"] and 'class="cite"' in asked.json()["answer_html"]
    about = httpx.get(widget_public + "embed/about", timeout=30).json()  # named, its size only with credentials
    assert about["name"] == "data" and about["examples"] and "files" not in about and "chunks" not in about
    assert httpx.get(widget_public + "embed/about", headers=BEARER, timeout=30).json()["files"] == 1
    assert httpx.post(widget_public + "api/ask", json={"question": "Who?"}, timeout=30).status_code == 401
    assert httpx.get(widget_public, timeout=30).status_code == 401


def test_wrong_tokens_lock_the_address_out(widget_public):  # last: it locks 127.0.0.1 out of this server
    statuses = [httpx.get(widget_public + "api/search", params={"q": "x"}, headers={"Authorization": "Bearer no"},
                          timeout=30).status_code for _ in range(MAX_FAILURES + 1)]
    first = statuses.index(429)  # earlier tests' wrong logins count too
    assert first > 0 and set(statuses[:first]) == {401} and set(statuses[first:]) == {429}, statuses
    locked = httpx.get(widget_public + "api/search", params={"q": "x"}, headers=BEARER, timeout=30)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0  # even the right token, for now
    assert httpx.post(widget_public + "login", data={"token": TOKEN}, timeout=30).status_code == 429
    upload = httpx.post(widget_public + "api/documents", files=[("files", ("a.txt", b"x"))],
                        headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)
    assert upload.status_code == 429 and "Too many wrong tokens" in upload.json()["error"]  # admin guesses too


def test_sessions_expire_and_cannot_be_forged():
    sessions = Sessions(TOKEN)
    cookie = sessions.issue(now=1000.0)
    assert sessions.valid(cookie, now=1000.0 + SESSION_SECONDS - 1)
    assert not sessions.valid(cookie, now=1000.0 + SESSION_SECONDS + 1)
    expires, nonce, signature = cookie.split(".")
    assert not sessions.valid(f"{int(expires) + 10 ** 6}.{nonce}.{signature}", now=1000.0)  # a longer life: refused
    assert not Sessions("another-token-entirely").valid(cookie, now=1000.0)  # a new token ends every session


def test_failures_expire_from_the_window():
    attempts = Attempts()
    for i in range(MAX_FAILURES):
        attempts.failed("10.0.0.1", now=100.0 + i)
    assert attempts.locked_for("10.0.0.1", now=110.0) > 0 and attempts.locked_for("10.0.0.2", now=110.0) == 0
    assert attempts.locked_for("10.0.0.1", now=100.0 + 301) == 0


def test_a_user_logs_in_in_the_browser_and_asks(protected, browser):
    page = browser.new_page()
    page.goto(protected)
    page.locator("#token").wait_for()  # sent to the login page
    page.locator("#token").fill("not the token")
    page.locator("button[type=submit]").click()
    page.locator(".error").wait_for()
    assert "not right" in page.locator(".error").inner_text()
    page.locator("#token").fill(TOKEN)
    page.locator("button[type=submit]").click()
    page.locator("#qa-question textarea").wait_for(timeout=30_000)  # the chat, after logging in
    page.locator("#qa-question textarea").fill("Who directs the Secretariat?")
    page.locator("#qa-question textarea").press("Enter")
    page.locator("#qa-sources mark").first.wait_for(timeout=30_000)
    assert "Secretary General" in page.locator("#qa-chat").inner_text()
    page.close()


def test_an_ipv6_client_is_counted_by_its_64_network():
    attempts = Attempts()
    for i in range(MAX_FAILURES):
        attempts.failed(f"2001:db8:1:2::{i + 1:x}", now=100.0 + i)  # a new address of the same /64 each time
    assert attempts.locked_for("2001:db8:1:2:ffff::1", now=110.0) > 0
    assert attempts.locked_for("2001:db8:1:3::1", now=110.0) == 0 and attempts.locked_for("10.0.0.1", now=110.0) == 0
