"""The served app: the `ask` API through gradio_client, and the chat page in real headless Chromium."""
from urllib.parse import urlparse

import pytest
from gradio_client import Client

from conftest import DEFAULT_DATA


def chat_client(url: str, seconds: float = 180) -> Client:
    """A gradio_client for the served app once its full chat is mounted (it is imported in the background after
    the first page: /config answers 503 or waits until then, longer than gradio_client's own time-out)."""
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url + "config", timeout=70) as r:
                if r.status == 200:
                    return Client(url, verbose=False)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_ask_endpoint_returns_the_ask_json(served_app):
    client = chat_client(served_app)
    out = client.predict("In which city is the Secretariat based?", api_name="/ask")
    assert out["abstained"] is False
    assert "[1]" in out["answer"] and "Vienna" in out["answer"]
    c = out["citations"][0]
    assert c["n"] == 1 and c["source"] == "osce_overview.txt" and "Based in Vienna" in c["text"]
    assert c["text"] in c["passage"]
    source_text = (DEFAULT_DATA / c["source"]).read_text(encoding="utf-8")
    assert source_text[c["start"]:c["end"]] == c["text"]


def test_ask_endpoint_abstains_and_refuses_empty_questions(served_app):
    client = chat_client(served_app)
    out = client.predict("What is the boiling point of mercury?", api_name="/ask")
    assert out["abstained"] is True and out["citations"] == []
    with pytest.raises(Exception, match="Please type a question"):
        client.predict("   ", api_name="/ask")


WATCH_ANSWER = """() => {
  window.__answerLengths = [];
  new MutationObserver(() => {
    const bots = document.querySelectorAll('#qa-chat .bot');
    if (bots.length) window.__answerLengths.push(bots[bots.length - 1].innerText.length);
  }).observe(document.querySelector('#qa-chat'), {subtree: true, childList: true, characterData: true});
}"""


def test_the_browser_streams_a_cited_answer_from_this_host_only(served_app, browser):
    page = browser.new_page()
    hosts = set()
    page.on("request", lambda r: hosts.add(urlparse(r.url).netloc))
    page.goto(served_app)
    page.locator("#qa-question textarea").wait_for()
    page.evaluate(WATCH_ANSWER)
    page.locator("#qa-question textarea").fill("Who directs the Secretariat?")
    page.locator("#qa-question textarea").press("Enter")
    page.locator("#qa-sources mark").first.wait_for(timeout=30_000)
    chat = page.locator("#qa-chat").inner_text()
    assert "Under the direction of the Secretary General" in chat and "[1]" in chat
    sources = page.locator("#qa-sources").inner_text()
    assert "[1] osce_overview.txt" in sources and "line 1, characters 0–" in sources
    assert page.locator("#qa-sources mark").first.inner_text().startswith("Under the direction of the Secretary")
    lengths = page.evaluate("window.__answerLengths")
    assert len(set(lengths)) >= 3, lengths  # the answer grew in pieces: it was streamed
    assert hosts == {urlparse(served_app).netloc}, hosts
    page.close()


def test_bold_text_is_drawn_with_the_pages_own_font_not_a_fallback(served_app, browser):
    page = browser.new_page()
    page.goto(served_app)
    page.locator("#qa-question textarea").fill("Who directs the Secretariat?")
    page.locator("#qa-question textarea").press("Enter")
    page.locator("#qa-chat strong").first.wait_for(timeout=30_000)  # the reader's answer span, in bold
    page.locator("#qa-sources .qa-source-head").first.wait_for()
    page.evaluate("document.fonts.ready")
    cdp = page.context.new_cdp_session(page)
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    cdp.send("CSS.enable")
    for selector in ("#qa-chat strong", "#qa-sources .qa-source-head"):
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        # every letter from the fonts the app serves (Gradio's SemiBold file holds almost none: DejaVu stood in)
        assert fonts and all(f["isCustomFont"] for f in fonts), (selector, fonts)
    page.close()


def test_the_browser_shows_a_friendly_prompt_for_an_empty_question(served_app, browser):
    page = browser.new_page()
    page.goto(served_app)
    page.locator("#qa-ask").wait_for()
    page.locator("#qa-ask").click()
    page.get_by_text("Please type a question.").wait_for(timeout=10_000)
    assert "Traceback" not in page.content()
    page.locator("#qa-question textarea").fill("Who directs the Secretariat?")
    page.locator("#qa-question textarea").press("Enter")
    page.locator("#qa-sources mark").first.wait_for(timeout=30_000)
    page.wait_for_function("document.querySelector('#qa-chat').innerText.includes('[1]')")
    chat = page.locator("#qa-chat").inner_text()
    assert "Please type a question." not in chat and chat.count("Who directs the Secretariat?") == 1, chat
    page.close()


def test_the_copy_button_copies_what_the_answer_shows_not_its_html(served_app, browser):
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(served_app)
    page.locator("#qa-question textarea").wait_for()
    page.locator("#qa-question textarea").fill("Who directs the Secretariat?")
    page.locator("#qa-question textarea").press("Enter")
    page.locator("#qa-sources mark").first.wait_for(timeout=30_000)
    page.locator('#qa-chat [data-testid="bot"]').last.hover()
    page.locator("#qa-chat .message-buttons button").last.click()
    page.wait_for_function("navigator.clipboard.readText().then(t => t.includes('Secretary General'))")
    page.wait_for_timeout(300)  # the chat's own copy (the message's HTML) is made first, then replaced
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("Under the direction of the Secretary General") and copied.endswith("[1]"), copied
    assert "<" not in copied and "\\" not in copied, copied
    # served over plain http there is no navigator.clipboard: the chat falls back to a copy command
    page.evaluate("() => { window.__clipboard = navigator.clipboard; delete Navigator.prototype.clipboard; }")
    assert page.evaluate("'clipboard' in navigator") is False
    page.evaluate("window.__clipboard.writeText('not copied yet')")
    page.locator('#qa-chat [data-testid="bot"]').last.hover()
    page.locator("#qa-chat .message-buttons button").last.click()
    page.wait_for_timeout(300)
    assert page.evaluate("window.__clipboard.readText()") == copied
    context.close()


def test_text_in_the_chat_is_escaped_only_where_markdown_would_read_it():
    from qa.web import as_markdown_text

    # the chat's copy button copies the message as sent: a plain sentence carries no backslash
    assert as_markdown_text("I couldn't find this in the documents.") == "I couldn't find this in the documents."
    assert as_markdown_text("e.g. (see 2.1) - ok!") == "e.g. (see 2.1) - ok!"
    assert as_markdown_text("1. a\n- b\n# c\n  2) d") == "1\\. a\n\\- b\n\\# c\n  2\\) d"  # lists, headings
    assert as_markdown_text("see https://x.org, www.x.org or a@x.org") == \
        "see https\\://x.org, www\\.x.org or a\\@x.org"  # not made links
    assert as_markdown_text("**x** _y_ `z` [a](javascript:b) ![i](j) <i>&") == \
        "\\*\\*x\\*\\* \\_y\\_ \\`z\\` \\[a\\](javascript:b) !\\[i\\](j) &lt;i&gt;&amp;"
