"""The first page comes before Gradio: the server answers with a light chat while the full chat is still being
imported and built, a question asked there is answered, and the page becomes the full chat without a reload.

The server is the real app on 127.0.0.1 in this process, driven by real Chromium; the only thing the test
does to it is hold the chat page's build until it has asked its question, so the window cannot close early.
"""
from __future__ import annotations

import threading

import httpx
import pytest

from conftest import DEFAULT_DATA

QUESTION = "Who directs the Secretariat?"


@pytest.fixture()
def held_app(assistant, default_index):
    release = threading.Event()
    yield from _serve(assistant, default_index, release, lambda build: release.wait(120) and build())


@pytest.fixture()
def broken_app(assistant, default_index):
    def fail(build):
        raise RuntimeError("the chat page cannot be built (a test's doing)")

    yield from _serve(assistant, default_index, threading.Event(), lambda build: fail(build))


def _serve(assistant, default_index, release, wrap):
    import uvicorn

    from qa.config import build_config
    from qa.server import bind, create_app

    config = build_config({}, data_dir=DEFAULT_DATA, index_dir=default_index, device="cpu")
    app = create_app(assistant, config)
    chat = app.state.late[0]
    build = chat._build
    chat._build = lambda: wrap(build)  # the import and build of the chat page, held (or failing) as the test says
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    for _ in range(200):
        try:
            httpx.get(url + "api/health", timeout=1)
            break
        except httpx.HTTPError:
            threading.Event().wait(0.05)
    yield url, release, chat
    release.set()
    server.should_exit = True
    thread.join(30)


def _light_page(browser, url: str):
    """A new browser page on url, once it shows the light chat's loading banner."""
    page = browser.new_page()
    page.goto(url)
    page.locator("#loading").wait_for()
    return page


def test_a_question_asked_while_the_chat_loads_is_answered_and_the_page_becomes_the_chat(held_app, browser):
    url, release, chat = held_app
    page = _light_page(browser, url)
    assert not chat.ready
    banner = page.locator("#loading")
    assert "loading" in banner.inner_text()
    api = httpx.post(url + "api/ask", json={"question": QUESTION}, timeout=60)  # the API does not wait for Gradio
    assert api.status_code == 200 and api.json()["citations"]
    page.evaluate("window.__samePage = true")
    page.locator("#question").fill(QUESTION)
    page.locator("#question").press("Enter")
    page.locator(".msg.bot details").wait_for(timeout=30_000)  # the answer, with its sources
    assert "Secretary General" in page.locator("#log").inner_text()
    assert not chat.ready  # all of that happened before the full chat existed
    release.set()
    page.locator("#switch").wait_for(timeout=120_000)  # a question was asked here: it offers, not forces, the switch
    assert "ready" in banner.inner_text()
    page.locator("#switch").click()
    page.locator("#qa-question textarea").wait_for(timeout=30_000)
    assert page.evaluate("window.__samePage === true") and page.url == url  # no reload, no navigation
    page.locator("#qa-sources mark").first.wait_for(timeout=30_000)  # the conversation came along, sources too
    chat_text = page.locator("#qa-chat").inner_text()
    assert QUESTION in chat_text and "Secretary General" in chat_text, chat_text
    assert page.evaluate("sessionStorage.getItem('qa-carried-questions')") is None  # carried once
    assert page.locator('#qa-chat [data-testid="bot"]').count() == 1
    page.locator("#qa-question textarea").fill("In which city is it based?")  # a follow-up on the carried question
    page.locator("#qa-question textarea").press("Enter")
    page.wait_for_function("""() => { const bots = document.querySelectorAll('#qa-chat [data-testid="bot"]');
        return bots.length === 2 && bots[1].innerText.includes('[1]'); }""", timeout=30_000)
    assert QUESTION in page.locator("#qa-chat").inner_text()  # the carried turn stays above the new one
    page.close()


def test_a_page_opened_before_the_chat_is_ready_becomes_it_by_itself(held_app, browser):
    url, release, chat = held_app
    page = _light_page(browser, url)
    page.evaluate("window.__samePage = true")
    release.set()
    page.locator("#qa-question textarea").wait_for(timeout=120_000)  # nothing asked yet: it switches at once
    assert page.evaluate("window.__samePage === true")
    fresh = httpx.get(url, headers={"Accept": "text/html"}, timeout=30)
    assert 'id="loading"' not in fresh.text and "gradio" in fresh.text.lower()  # now / is the full chat itself
    page.close()


def test_when_the_full_chat_cannot_start_the_light_one_says_so_and_keeps_answering(broken_app, browser):
    url, _, chat = broken_app
    page = _light_page(browser, url)
    page.wait_for_function("document.getElementById('loading').textContent.includes('could not start')",
                           timeout=30_000)
    page.locator("#question").fill(QUESTION)
    page.locator("#question").press("Enter")
    page.locator(".msg.bot details").wait_for(timeout=30_000)
    assert chat.failed and "Secretary General" in page.locator("#log").inner_text()
    page.close()
