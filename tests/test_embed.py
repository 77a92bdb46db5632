"""Embedding in another site, in real Chromium: examples/embed.html served from a second origin shows the
widget, the plain iframe and the web component; each answers with citations; nothing loads from other hosts;
an origin that is not allowed is refused."""
import functools
import http.server
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import ROOT, free_port, start_server, stop

EXAMPLE = ROOT / "examples" / "embed.html"
DOCUMENTED_URL = "http://127.0.0.1:7860"


def serve_folder(folder: Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}", httpd


def host_page(tmp_path: Path, app_url: str) -> tuple[str, http.server.ThreadingHTTPServer]:
    """examples/embed.html, pointing at app_url instead of the documented 127.0.0.1:7860, on its own origin."""
    html = EXAMPLE.read_text(encoding="utf-8")
    assert DOCUMENTED_URL in html
    (tmp_path / "embed.html").write_text(html.replace(DOCUMENTED_URL, app_url.rstrip("/")), encoding="utf-8")
    origin, httpd = serve_folder(tmp_path)
    return origin + "/embed.html", httpd


@pytest.fixture
def example(served_app, tmp_path, browser):
    url, httpd = host_page(tmp_path, served_app)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    hosts = set()
    page.on("request", lambda r: hosts.add(urlparse(r.url).netloc))
    page.goto(url)
    yield page, hosts, {urlparse(url).netloc, urlparse(served_app).netloc}
    page.close()
    httpd.shutdown()


def ask_in_embed(frame, question: str) -> str:
    frame.locator("#question").fill(question)
    frame.locator("#question").press("Enter")
    frame.locator(".msg.bot .cite").first.wait_for(timeout=30_000)
    frame.locator(".cite").first.click()  # [1] opens the sources
    frame.locator(".qa-source mark").first.wait_for(timeout=5_000)
    return frame.locator("#log").inner_text()


def test_the_widget_opens_a_chat_that_answers_with_citations(example):
    page, hosts, own = example
    assert page.locator("#qa-widget iframe").count() == 0  # nothing loads before the button is pressed
    page.locator("#qa-widget-button").click()
    text = ask_in_embed(page.frame_locator("#qa-widget iframe"), "Who directs the Secretariat?")
    assert "Under the direction of the Secretary General" in text and "[1]" in text
    assert "[1] osce_overview.txt" in text
    assert page.locator("#qa-widget .head").inner_text().startswith("Ask our docs")  # data-title
    assert hosts <= own, hosts


def test_the_plain_iframe_answers_with_citations(example):
    page, hosts, own = example
    text = ask_in_embed(page.frame_locator("#qa-iframe"), "In which city is the Secretariat based?")
    assert "Based in Vienna" in text and "[1] osce_overview.txt" in text
    assert hosts <= own, hosts


def test_the_web_component_answers_with_citations(example):
    page, hosts, own = example
    component = page.locator("#qa-component")
    component.scroll_into_view_if_needed()  # the web component renders once it comes into view
    box = component.locator("#qa-question textarea")
    box.wait_for(timeout=30_000)
    box.fill("What does the OSCE do about trafficking in human beings?")
    box.press("Enter")
    component.locator("#qa-sources mark").first.wait_for(timeout=30_000)
    assert "[1] osce_overview.txt" in component.locator("#qa-sources").inner_text()
    assert "[1]" in component.locator("#qa-chat").inner_text()
    assert hosts <= own, hosts


def test_an_origin_that_is_not_allowed_is_refused(served_index, tmp_path, browser):
    app_url, proc = start_server(served_index, QA_ALLOWED_ORIGINS="http://allowed.example")
    url, httpd = host_page(tmp_path, app_url)
    page = browser.new_page()
    try:
        page.goto(url)
        page.wait_for_timeout(2_000)
        framed = page.frame_locator("#qa-iframe").locator("#question")
        assert framed.count() == 0  # frame-ancestors refused the frame
        outcome = page.evaluate("""async (api) => {
            try { const r = await fetch(api, {method: 'POST', headers: {'Content-Type': 'application/json'},
                                              body: JSON.stringify({question: 'Who directs the Secretariat?'})});
                  return 'read ' + r.status; }
            catch (e) { return 'blocked'; } }""", app_url + "api/ask")
        assert outcome == "blocked"
    finally:
        page.close()
        httpd.shutdown()
        stop(proc)


def test_the_api_docs_render_from_this_host_only(served_app, browser):
    page = browser.new_page()
    hosts = set()
    page.on("request", lambda r: hosts.add(urlparse(r.url).netloc))
    page.goto(served_app + "docs")
    page.get_by_text("/api/ask").first.wait_for(timeout=30_000)
    assert hosts == {urlparse(served_app).netloc}, hosts
    page.close()


class _PrefixProxy(http.server.BaseHTTPRequestHandler):
    """A reverse proxy that serves the app under /qa/, as nginx's `location /qa/ { proxy_pass http://app/; }`."""
    app = ""

    def log_message(self, *args) -> None:
        pass

    def _forward(self) -> None:
        import urllib.error
        import urllib.request

        if not self.path.startswith("/qa/"):
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        request = urllib.request.Request(self.app + self.path[3:], data=body, headers=headers, method=self.command)
        try:
            response = urllib.request.urlopen(request, timeout=60)
        except urllib.error.HTTPError as e:
            response = e
        payload = response.read()
        self.send_response(response.status)
        for k, v in response.headers.items():
            if k.lower() not in ("transfer-encoding", "connection", "content-length", "content-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _forward


def test_the_widget_works_behind_a_proxy_that_serves_the_app_under_a_path(served_app, tmp_path, browser):
    handler = type("Proxy", (_PrefixProxy,), {"app": served_app.rstrip("/")})
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    url, httpd = host_page(tmp_path, f"http://127.0.0.1:{proxy.server_address[1]}/qa")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(url)
        page.locator("#qa-widget-button").click()
        assert "/qa/embed?" in page.locator("#qa-widget iframe").get_attribute("src")
        text = ask_in_embed(page.frame_locator("#qa-widget iframe"), "Who directs the Secretariat?")
        assert "Under the direction of the Secretary General" in text and "[1] osce_overview.txt" in text
    finally:
        page.close()
        httpd.shutdown()
        proxy.shutdown()
        proxy.server_close()
