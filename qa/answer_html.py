"""An answer as safe HTML, the same on every page that shows one (the Gradio chat, the light chat and the embedded
widget): each cited unit rendered as its document writes it (display.py: code as code, no raw HTML run), with
its marker and the reader's answer in bold; and the sources panel, each passage once with its cited units marked."""
from __future__ import annotations

import html
from typing import Callable

from .answering import shown_text
from .display import CITE_MARK, in_its_block, is_markup, marked_passage, render, with_answer_bold, without_marks
from .records import Answer


def plain_marker(n: int) -> str:
    return f"[{n}]"


def button_marker(n: int) -> str:
    """A marker the widget turns into a link to its source."""
    return f'<button type="button" class="cite" data-n="{n}">[{n}]</button>'


def answer_html(answer: Answer, marker: Callable[[int], str] = plain_marker) -> str:
    """The cited units, each followed by marker(n); "" when the answer abstained (its text is shown as text)."""
    if answer.abstained:
        return ""
    pieces = []
    for c in answer.citations:
        text = with_answer_bold(c.text, c.answer_start - c.start, c.answer_end - c.start) \
            if c.answer_start >= 0 else without_marks(c.text)  # a document's own mark characters are never marks
        shown = shown_text(in_its_block(text, without_marks(c.passage), c.start - c.passage_start, c.source))
        if is_markup(c.source):
            piece = render(shown, c.source).strip() + f'<p class="qa-marker">{CITE_MARK}</p>' if "\n" in shown \
                else render(f"{shown} {CITE_MARK}", c.source).strip()
        else:
            piece = render(f"{' '.join(shown.split())} {CITE_MARK}", c.source).replace('<p class="qa-passage">', "<p>")
        pieces.append(piece.replace(CITE_MARK, marker(c.n)))
    return "".join(pieces)


def sources_html(answer: Answer) -> str:
    """The sources panel: each passage once, with its file, section and line, its cited units marked inside it
    (Markdown and rst rendered safely, see display.py); each passage says which markers it holds (data-cites)."""
    if answer.abstained:
        return '<div class="qa-sources"><p class="qa-muted">No source answers this question.</p></div>'
    groups: dict[tuple[str, int], list] = {}
    for c in answer.citations:
        groups.setdefault((c.source, c.passage_start), []).append(c)
    parts = ['<div class="qa-sources">']
    for (source, passage_start), cited in groups.items():
        first = cited[0]
        numbers = "".join(f"[{c.n}]" for c in cited)
        where = (f"page {first.page}, " if first.page else "") + f"line {first.line}, characters " + \
            ", ".join(f"{c.start}&ndash;{c.end}" for c in cited)
        section = f'<div class="qa-section">{html.escape(first.section)}</div>' if first.section else ""
        body = marked_passage(first.passage, [(c.start - passage_start, c.end - passage_start) for c in cited],
                              source)
        parts.append(
            f'<div class="qa-source" id="qa-source-{first.n}" data-cites="{" ".join(str(c.n) for c in cited)}">'
            f'<div class="qa-source-head">{numbers} {html.escape(source)} <span class="qa-span">{where}</span></div>'
            f'{section}<div class="qa-body">{body}</div></div>')
    parts.append("</div>")
    return "".join(parts)
