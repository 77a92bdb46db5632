"""Text out of .html/.htm, .pdf and .docx files: the extracted text is what chunks and citations point into.

HTML: the visible text only (scripts, styles, templates and the head are dropped), one line per block.
PDF: pypdf's text of each page, pages separated by a form feed (so a citation can name its page).
DOCX: python-docx's paragraphs and table rows, one per line.
"""
from __future__ import annotations

import io
import re
from html.parser import HTMLParser

from .records import Block
from .structure import Sections, heading_text

PAGE_BREAK = "\f"
_SKIP = {"script", "style", "noscript", "template", "head", "svg", "iframe", "object"}
_BLOCK = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section",
          "article", "header", "footer", "nav", "aside", "main", "pre", "blockquote", "title", "dt", "dd",
          "figcaption", "hr", "form", "fieldset", "details", "summary", "body", "html"}


class ExtractionError(ValueError):
    """The file cannot be read as its format (corrupt, encrypted, not really that format)."""


_KINDS = {"pre": "code", "li": "item", "dt": "item", "tr": "row", "blockquote": "quote", "title": "context",
          **{f"h{n}": "heading" for n in range(1, 7)}}


class _Visible(HTMLParser):
    """The visible text, each piece tagged with the block element it sits in (innermost first)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[tuple[str, tuple | None]] = []
        self.skipping = 0
        self.open: list[list] = []  # [tag, serial, kind, depth] of the open block elements
        self.serial = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skipping += 1
        elif tag in _BLOCK:
            self.parts.append(("\n", None))
            if tag in ("br", "hr"):
                return
            self.serial += 1
            kind = _KINDS.get(tag, "paragraph")
            depth = sum(1 for o in self.open if o[0] in ("li", "dt", "dd")) + (tag in ("li", "dt"))
            if kind == "paragraph" and self.open and self.open[-1][0] == "li" and not self.open[-1][4]:
                kind = "item"  # a list item's first paragraph
            if self.open:
                self.open[-1][4] = True
            self.open.append([tag, self.serial, kind, depth, False])

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK:
            self.parts.append(("\n", None))
            for i in range(len(self.open) - 1, -1, -1):
                if self.open[i][0] == tag:
                    del self.open[i:]
                    break

    def handle_data(self, data):
        if not self.skipping:
            inner = self.open[-1] if self.open else None
            level = int(inner[0][1]) if inner and inner[2] == "heading" else 0
            self.parts.append((data, (inner[1], inner[2], level, inner[3]) if inner else (0, "paragraph", 0, 0)))


def html_text(markup: str) -> str:
    return html_structure(markup)[0]


def html_structure(markup: str) -> tuple[str, tuple[Block, ...]]:
    """The visible text, one line per block (white space collapsed), and its blocks with offsets into it."""
    parser = _Visible()
    parser.feed(markup)
    parser.close()
    lines: list[tuple[str, tuple | None]] = []  # each raw line and the tag of its first visible piece
    current, tag = [], None
    for data, piece_tag in parser.parts:
        chunks = data.split("\n")
        for n, part in enumerate(chunks):
            if n:
                lines.append(("".join(current), tag))
                current, tag = [], None
            current.append(part)
            if tag is None and part.strip():
                tag = piece_tag
    lines.append(("".join(current), tag))
    text_lines, blocks = [], []
    at = 0
    sections = Sections()
    for raw, tag in lines:
        line = " ".join(raw.split())
        if not line:
            continue
        serial, kind, level, depth = tag or (0, "paragraph", 0, 0)
        start, end = at, at + len(line)
        text_lines.append(line)
        at = end + 1
        if blocks and blocks[-1][0] == serial and serial and kind in ("code", "paragraph", "quote", "item"):
            blocks[-1][3] = end  # the next line of the same element
            continue
        section = sections.enter(level, heading_text(line)) if kind == "heading" else sections.now
        blocks.append([serial, kind, start, end, level, depth, section])
    return "\n".join(text_lines), tuple(Block(kind, s, e, level=level, depth=depth, section=section)
                                         for _, kind, s, e, level, depth, section in blocks)


def pdf_text(raw: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise ExtractionError("encrypted PDF")
        pages = [re.sub(r"[ \t]+\n", "\n", (page.extract_text() or "").replace(PAGE_BREAK, " ")).strip()
                 for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as e:
        raise ExtractionError(f"not a readable PDF ({type(e).__name__})") from None
    return f"\n{PAGE_BREAK}\n".join(pages)


def docx_text(raw: bytes) -> str:
    import zipfile

    import docx

    try:
        document = docx.Document(io.BytesIO(raw))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise ExtractionError(f"not a readable .docx ({type(e).__name__})") from None
    lines = [p.text.strip() for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text.strip() for cell in row.cells))
    return "\n".join(line for line in lines if line)
