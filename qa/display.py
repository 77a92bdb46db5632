"""Showing cited text in the browser safely: Markdown and reStructuredText sources rendered by markdown-it-py with
raw HTML off (a <script> in a document is shown as text), images reduced to their alt text and links to their
words (nothing is loaded from elsewhere); any other source shown as escaped text with its line breaks."""
from __future__ import annotations

import functools
import html
import re

from .structure import MARKDOWN_SUFFIXES, RST_SUFFIXES

_LINE_MARKERS = re.compile(r"[ \t]*(?:(?:[-*+>]|\d{1,9}[.)]|#{1,6})[ \t]+)*")
OPEN, CLOSE = "\ue000", "\ue001"  # marks around cited text while a passage is rendered


def is_markup(source: str) -> bool:
    return source.lower().endswith(MARKDOWN_SUFFIXES + RST_SUFFIXES)


@functools.lru_cache(maxsize=1)
def _renderer():
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    md.renderer.rules["link_open"] = lambda *_: ""
    md.renderer.rules["link_close"] = lambda *_: ""
    md.renderer.rules["image"] = lambda tokens, i, *_: html.escape(tokens[i].content)
    return md


def render(text: str, source: str) -> str:
    """Cited text as safe HTML."""
    if is_markup(source):
        return _renderer().render(text).replace(OPEN, "<mark>").replace(CLOSE, "</mark>")
    escaped = html.escape(text).replace(OPEN, "<mark>").replace(CLOSE, "</mark>")
    return f'<p class="qa-passage">{escaped}</p>'


def marked_passage(passage: str, marks: list[tuple[int, int]], source: str) -> str:
    """A passage as safe HTML with the cited spans (offsets into it) marked, line by line, so that a mark
    never changes what a line is (a list item, a code fence)."""
    inside = [False] * len(passage)
    for a, b in marks:
        for i in range(max(0, a), min(len(passage), b)):
            inside[i] = True
    out = []
    at = 0
    for line in passage.split("\n"):
        start, end = at, at + len(line)
        at = end + 1
        body = line.strip()
        lead = len(line) - len(line.lstrip())
        marked = [i for i in range(start + lead, start + lead + len(body)) if inside[i]]
        if not marked or body.startswith(("```", "~~~")):
            out.append(line)
            continue
        a, b = marked[0] - start, marked[-1] + 1 - start
        if is_markup(source):  # keep a line's list, quote or heading marker in front of the mark
            a = max(a, _LINE_MARKERS.match(line).end())
            if a >= b:
                out.append(line)
                continue
        out.append(line[:a] + OPEN + line[a:b] + CLOSE + line[b:])
    return render("\n".join(out), source)
