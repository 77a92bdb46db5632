"""The web page: a Gradio chat with streamed, cited answers and a sources panel, plus the `ask` API endpoint."""
from __future__ import annotations

import html
import json
import logging
import re
import time
from pathlib import Path

from .assistant import MAX_EXAMPLES, Assistant, clean_question
from .config import IN_CHECKOUT, ROOT, Config
from .answer_html import answer_html, sources_html
from .display import one_line_html
from .errors import BadQuestion, QAError, told
from .reading import SUFFIXES
from .records import Answer
from .access import Attempts, client_address, token_ok
from .uploads import add_documents

log = logging.getLogger("qa.web")

EXAMPLES = ["Who directs the Secretariat?", "In which city is the Secretariat based?",
            "What does the Conflict Prevention Centre do?"]
STREAM_STEPS = 12  # the answer arrives in this many growing pieces
STREAM_PAUSE = 0.03  # seconds between pieces
MAX_REMEMBERED = 10  # earlier questions kept per chat for follow-ups
MAX_SHOWN = 200  # chat messages kept per browser session (each answer re-sends them)
INTERNAL_ERROR = "Something went wrong on the server while answering. Please try again."
EMPTY_SOURCES = '<div class="qa-sources"><p class="qa-muted">Sources of the latest answer appear here.</p></div>'

# Gradio's theme declares Source Sans Pro at weights 400 and 600, and its SemiBold file holds almost no letters (5 KB),
# so bold text fell back to another font (DejaVu Sans Bold: larger, another shape). Its Bold file is whole: declared
# here for 600 and 700, it is what bold text (an answer's span, a source's name, a button) is drawn with.
BOLD_FACES = "".join(
    f'@font-face {{ font-family: "Source Sans Pro"; font-style: normal; font-weight: {weight}; font-display: swap; '
    f'src: url("static/fonts/SourceSansPro/SourceSansPro-Bold.woff2") format("woff2"); }}\n' for weight in (600, 700))

CSS = BOLD_FACES + """
.qa-sources { font-size: 0.95em; }
.qa-source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; margin-bottom: 10px; }
.qa-source-head { font-weight: 600; margin-bottom: 4px; }
.qa-span { font-weight: 400; color: var(--body-text-color-subdued); }
.qa-passage { white-space: pre-wrap; margin: 0; }
.qa-body mark { background: #fde68a; color: #111; padding: 0 1px; }
.qa-body { overflow-wrap: anywhere; }
.qa-body pre { white-space: pre-wrap; margin: 4px 0; padding: 6px 8px; border-radius: 6px; background: var(--background-fill-secondary); }
.qa-body pre code { white-space: pre-wrap; overflow-wrap: anywhere; }
.admonition { border-left: 3px solid var(--border-color-accent, #2563eb); padding: 2px 10px; margin: 6px 0; }
.admonition-title { font-weight: 600; margin: 0; }
.qa-section { color: var(--body-text-color-subdued); font-size: 0.9em; margin-bottom: 4px; }
.qa-marker { margin: 0; color: var(--body-text-color-subdued); }
.qa-muted { color: var(--body-text-color-subdued); }
"""

# What the light chat (static/embed.html) asked before it became this one, read once from the tab's sessionStorage.
CARRIED_QUESTIONS = """() => {
  const carried = sessionStorage.getItem("qa-carried-questions") || "";
  sessionStorage.removeItem("qa-carried-questions");
  return carried;
}"""

# The chat's copy button copies a message as it was sent (an answer's HTML); this makes it copy what the message shows:
# over navigator.clipboard (https, localhost) by writing after the chat does, and where there is none (plain http,
# where the chat falls back to a "copy" command) in that command's copy event.
COPY_SHOWN_TEXT = """() => {
  let pending = null;  // what the copy button being clicked should copy
  const shownText = (button) => {
    let row = button.closest(".message-buttons");  // the bar after the message (or group of messages) it copies
    do { row = row && row.previousElementSibling; } while (row && !row.classList.contains("message-row"));
    const shown = row ? [...row.querySelectorAll('[data-testid="bot"], [data-testid="user"]')] : [];
    return shown.length ? shown.map((m) => m.innerText.trim()).join("\\n") : null;
  };
  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element && event.target.closest("#qa-chat .message-buttons button");
    pending = button ? shownText(button) : null;
    if (pending === null) return;
    const text = pending;
    setTimeout(() => { pending = null; }, 0);  // the chat's copy command, if any, ran during this click
    if (navigator.clipboard) setTimeout(() => navigator.clipboard.writeText(text).catch(() => {}), 50);
  }, true);
  document.addEventListener("copy", (event) => {
    if (pending === null || !event.clipboardData) return;
    event.clipboardData.setData("text/plain", pending);
    event.preventDefault();
  });
}"""

_MD_INLINE = re.compile(r"([\\`*_\[\]|~])")  # Markdown wherever it stands (with [ ] escaped, ! ( ) make no link)
_AUTOLINK = re.compile(r"(?i)\b(?:https?|ftp):|\bwww\.|@")  # where GFM would start a link of its own
_MD_LINE_START = re.compile(r"^([ \t]*)(?:([#+=-])|(\d+)([.)]))", re.M)  # only where a line starts: a heading, a list


def as_markdown_text(text: str) -> str:
    """Text shown literally by the chat's Markdown renderer: HTML escaped, and only the punctuation that would be
    Markdown where it stands escaped (so that the chat's copy button copies "the documents." without a backslash)."""
    escaped = _MD_INLINE.sub(r"\\\1", html.escape(text, quote=False))
    escaped = _AUTOLINK.sub(lambda m: m.group()[:-1] + "\\" + m.group()[-1], escaped)  # shown as typed, not linked
    return _MD_LINE_START.sub(_escape_line_start, escaped.replace("\r\n", "\n").replace("\r", "\n"))


def _escape_line_start(m: re.Match) -> str:
    indent, marker, number, after = m.groups()
    return f"{indent}\\{marker}" if marker else f"{indent}{number}\\{after}"


def answer_markdown(answer: Answer) -> str:
    """The answer as the chat shows it (answer_html.py), in one line of HTML for the chat's Markdown renderer."""
    return as_markdown_text(answer.answer) if answer.abstained else one_line_html(answer_html(answer))


def notice_markdown(answer: Answer) -> str:
    """The answer's notice (a trimmed question, names the documents never mention) in italics above it, or ""."""
    return f"_{as_markdown_text(answer.notice)}_\n\n" if answer.notice else ""


def _pieces(text: str, steps: int) -> list[str]:
    words = text.split(" ")
    size = max(1, -(-len(words) // steps))
    return [" ".join(words[:i]) for i in range(size, len(words), size)] + [text]


def build_app(assistant: Assistant, examples: list[str] | None = None, attempts: Attempts | None = None):
    import gradio as gr

    def respond(message: str, shown: list, asked: list):
        """Stream the answer into the chat. The transcript (shown) and the questions asked are kept on the
        server, per browser session: the chat's own value is never read back, so a client cannot slip a
        message of its choosing, such as a file reference that Gradio would serve, into what it is sent."""
        history = list(shown)

        def turn(content: str, sources, asked: list, kept: bool = True):
            """The outputs: the chat with this reply, and the transcript kept (without it where not kept)."""
            messages = (history + [{"role": "assistant", "content": content}])[-MAX_SHOWN:]
            return "", messages, sources, asked, messages if kept else history

        try:
            question, _ = clean_question(message if isinstance(message, str) else "",
                                         assistant.config.max_question_chars)
        except BadQuestion as e:  # said in the chat, not kept in its transcript: the next answer replaces it
            yield turn(str(e), gr.update(), asked, kept=False)
            return
        history.append({"role": "user", "content": as_markdown_text(question)})
        yield turn("Searching the documents…", gr.update(), asked)
        try:
            answer = assistant.ask(message, history=asked)
        except QAError as e:
            yield turn(as_markdown_text(told(e)), EMPTY_SOURCES, asked)
            return
        except Exception:  # never a traceback in the browser; the server log keeps it
            log.exception("answering failed")
            yield turn(INTERNAL_ERROR, EMPTY_SOURCES, asked)
            return
        asked = (asked + [question])[-MAX_REMEMBERED:]
        prefix = notice_markdown(answer)
        for piece in _pieces(answer.answer, STREAM_STEPS):
            yield turn(prefix + as_markdown_text(piece), gr.update(), asked)
            time.sleep(STREAM_PAUSE)
        yield turn(prefix + answer_markdown(answer), sources_html(answer), asked)

    def ask(question: str) -> dict:
        """Answer a question from the documents. Returns {question, answer, abstained, citations}."""
        try:
            return assistant.ask(question).to_json()
        except QAError as e:
            raise gr.Error(told(e)) from None
        except Exception:
            log.exception("answering failed")
            raise gr.Error(INTERNAL_ERROR) from None

    with gr.Blocks(title="Ask your documents", analytics_enabled=False, fill_height=True) as demo:
        gr.Markdown("## Ask your documents\nAnswers quote the documents and cite the exact text; "
                    "the sources panel shows each citation in its passage.")
        about = gr.Markdown("_Loading the documents…_", elem_id="qa-collection")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Chat", height=460, elem_id="qa-chat", buttons=["copy"],
                                     feedback_options=None)
                with gr.Row():
                    box = gr.Textbox(placeholder="Ask a question about the documents…", label="Question",
                                     show_label=False, scale=5, elem_id="qa-question")
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="qa-ask")
                with gr.Row(elem_id="qa-examples"):
                    tries = [gr.Button("", size="sm", visible=False, elem_classes="qa-example")
                             for _ in range(MAX_EXAMPLES)]
            with gr.Column(scale=2):
                gr.Markdown("### Sources")
                sources = gr.HTML(EMPTY_SOURCES, elem_id="qa-sources")
        if assistant.config.admin_token:
            with gr.Accordion("Add documents", open=False, elem_id="qa-admin"):
                uploads = gr.File(file_count="multiple", file_types=list(SUFFIXES), label="Documents",
                                  elem_id="qa-files")
                token = gr.Textbox(type="password", label="Admin token", elem_id="qa-token")
                add = gr.Button("Add and index", elem_id="qa-add")
                added = gr.Markdown("Choose files, enter the admin token, then **Add and index**. Progress "
                                    "shows here.", elem_id="qa-add-status", min_height=60)

            def upload(paths, given, request: gr.Request = None, progress=gr.Progress(track_tqdm=True)):
                address = client_address(request)
                if attempts is not None and (wait := attempts.locked_for(address)):
                    return f"Too many wrong tokens; try again in {wait} s."
                if not token_ok(assistant.config.admin_token, given):
                    if attempts is not None and given:
                        attempts.failed(address)
                    return "The admin token is missing or wrong."
                progress(0, desc="Storing the files")
                try:
                    files = [(Path(p).name, Path(p).read_bytes()) for p in paths or []]
                    result = add_documents(assistant, files)
                except QAError as e:
                    return as_markdown_text(told(e))
                except Exception:
                    log.exception("adding documents failed")
                    return INTERNAL_ERROR
                notes = "".join(f"\n- {as_markdown_text(w)}" for w in result["warnings"])
                return (f"Indexed {len(result['stored'])} file(s) in {result['seconds']} s: "
                        f"{result['files_added']} new, {result['files_updated']} updated; the index now holds "
                        f"{result['chunks']} chunks. Ask away.{notes}")

            add.click(upload, [uploads, token], added, api_visibility="private", concurrency_limit=1,
                      show_progress="full")
        asked, shown = gr.State([]), gr.State([])
        for trigger in (box.submit, send.click):
            trigger(respond, [box, shown, asked], [box, chatbot, sources, asked, shown], api_visibility="private")
        chatbot.clear(lambda: ([], EMPTY_SOURCES, []), None, [asked, sources, shown], api_visibility="private")
        gr.api(ask, api_name="ask")

        def describe():
            """The collection's name and size, and example questions for it (when the index is loaded)."""
            try:
                found = assistant.collection(tuple(examples or ()))
            except QAError as e:
                return [f"_{as_markdown_text(told(e))}_"] + [gr.update(visible=False)] * MAX_EXAMPLES
            about_text = (f"**{as_markdown_text(found.name)}**: {found.files} file{'s' * (found.files != 1)}, "
                          f"{found.chunks} passages")
            shown_examples = list(found.examples)[:MAX_EXAMPLES]
            return [about_text] + [gr.update(value=e, visible=True) for e in shown_examples] + \
                [gr.update(visible=False)] * (MAX_EXAMPLES - len(shown_examples))

        demo.load(describe, None, [about] + tries, api_visibility="private")

        def carry_over(carried: str):
            """The questions asked in the light chat while this one loaded (sessionStorage, CARRIED_QUESTIONS),
            asked again here, so that switching to this chat keeps the conversation."""
            try:
                questions = json.loads(carried) if carried else []
            except (ValueError, RecursionError):
                questions = []
            if not isinstance(questions, list) or not questions:  # nothing carried: what the chat holds stays
                return gr.update(), gr.update(), gr.update(), gr.update()
            shown, asked, sources = [], [], EMPTY_SOURCES
            for question in [q for q in questions if isinstance(q, str)][-MAX_REMEMBERED:]:
                try:
                    question, _ = clean_question(question, assistant.config.max_question_chars)
                    answer = assistant.ask(question, history=asked)
                except QAError:
                    continue  # not answerable here now (an empty question, the index reloading): left out
                except Exception:
                    log.exception("answering a carried question failed")
                    continue
                asked = (asked + [question])[-MAX_REMEMBERED:]
                shown += [{"role": "user", "content": as_markdown_text(question)},
                          {"role": "assistant", "content": notice_markdown(answer) + answer_markdown(answer)}]
                sources = sources_html(answer)
            return shown, sources, asked, shown

        carried = gr.Textbox(visible=False)
        demo.load(carry_over, carried, [chatbot, sources, asked, shown], api_visibility="private",
                  js=CARRIED_QUESTIONS, show_progress="hidden")
        for button in tries:  # an example question is asked at once
            button.click(lambda text: text, button, box, api_visibility="private").then(
                respond, [box, shown, asked], [box, chatbot, sources, asked, shown], api_visibility="private")
    return demo


def default_examples(config: Config) -> list[str]:
    """The example questions fit the bundled corpus; other collections get none."""
    return EXAMPLES if IN_CHECKOUT and config.data_dir == ROOT / "data" else []
