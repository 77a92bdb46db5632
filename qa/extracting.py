"""Text out of .html/.htm, .pdf and .docx files: the extracted text is what chunks and citations point into.

HTML: the visible text only (scripts, styles, templates and the head are dropped), one line per block.
PDF: pypdf's text of each page, pages separated by a form feed (so a citation can name its page).
DOCX: python-docx's paragraphs and table rows, one per line.
"""
from __future__ import annotations

import io
import re
from html.parser import HTMLParser

PAGE_BREAK = "\f"
_SKIP = {"script", "style", "noscript", "template", "head", "svg", "iframe", "object"}
_BLOCK = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section",
          "article", "header", "footer", "nav", "aside", "main", "pre", "blockquote", "title", "dt", "dd",
          "figcaption", "hr", "form", "fieldset", "details", "summary", "body", "html"}


class ExtractionError(ValueError):
    """The file cannot be read as its format (corrupt, encrypted, not really that format)."""


class _Visible(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skipping += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def html_text(markup: str) -> str:
    parser = _Visible()
    parser.feed(markup)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)


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
