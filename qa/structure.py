"""Document structure: a document's text as blocks (headings, paragraphs, list items, code, table rows, quotes,
context) with exact offsets into that text and the heading path above each.

Markdown is parsed by markdown-it-py (CommonMark, GFM tables, front matter, admonitions), reStructuredText by
docutils (file insertion and raw output off; unknown Sphinx roles and directives stay text), HTML during
extraction (extracting.py); every other text is plain: paragraphs at blank lines. Offsets come from the
parsers' source maps (line ranges, or the node's own source text found in order), never from re-rendered text.
"""
from __future__ import annotations

import functools
import re

from .records import Block, Document

MARKDOWN_SUFFIXES = (".md", ".markdown")
RST_SUFFIXES = (".rst",)
_ITEM_MARKER = re.compile(r"[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?")
_QUOTE_MARKER = re.compile(r"(?:[ \t]*>[ \t]?)+")
_INCLUDE = re.compile(r"^\s*(?:\{\*.*\*\}|\{%.*%\}|-+8<-+.*|\.\. include::.*)\s*$", re.S)  # snippet/include lines
_CONTEXT_DIRECTIVES = {"toctree", "include", "literalinclude", "raw", "image", "figure", "automodule", "autoclass",
                       "autofunction", "automethod", "autodata", "autoattribute", "autoexception", "currentmodule",
                       "module", "highlight", "only", "index", "tabularcolumns", "contents"}
# Sphinx directives that describe one named thing (a setting, a function, an option), with or without a domain:
# ".. py:data:: SESSION_COOKIE_SECURE" and the text under it are one entry, like a list item and what it holds
OBJECT_DIRECTIVE = re.compile(r"(?:\w+:)?(?:function|data|class|exception|method|classmethod|staticmethod|attribute|"
                               r"property|decorator|decoratormethod|option|cmdoption|envvar|confval|setting|describe|"
                               r"object|member|macro|type|var|struct|enum|enumerator|union|event)")
_NESTED_DIRECTIVE = re.compile(r"^[ \t]+(\.\. [\w:-]+::)", re.M)  # a directive inside another one's body
_HEADING_MARKUP = re.compile(r"[`*_]|\{#[^}]*\}|<[^>]+>")


def document_blocks(doc: Document) -> list[Block]:
    """The blocks of a document, in order."""
    if doc.blocks is not None:
        return list(doc.blocks)
    name = doc.source.lower()
    if name.endswith(MARKDOWN_SUFFIXES):
        return markdown_blocks(doc.text)
    if name.endswith(RST_SUFFIXES):
        return rst_blocks(doc.text)
    return plain_blocks(doc.text)


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    piece = text[start:end]
    lead = len(piece) - len(piece.lstrip())
    return start + lead, start + len(piece.rstrip()) if piece.strip() else start + lead


def plain_blocks(text: str) -> list[Block]:
    """Paragraphs separated by blank lines."""
    out = []
    at = 0
    for m in re.finditer(r"(?:\r\n?|\n)[ \t\f]*(?:\r\n?|\n)|\Z", text):
        s, e = _trimmed(text, at, m.start())
        if e > s:
            out.append(Block("paragraph", s, e))
        at = m.end()
    return out


def heading_text(raw: str) -> str:
    """A heading as shown in a section path: markup and extra spaces dropped."""
    return " ".join(_HEADING_MARKUP.sub("", raw).strip(" #=-~^\"'").split())[:120]


class Sections:
    """The heading path as headings of each level arrive."""

    def __init__(self):
        self.path: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> tuple[str, ...]:
        while self.path and self.path[-1][0] >= level:
            self.path.pop()
        if title:
            self.path.append((level, title))
        return self.now

    @property
    def now(self) -> tuple[str, ...]:
        return tuple(t for _, t in self.path)


@functools.lru_cache(maxsize=1)
def _markdown_parser():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.admon import admon_plugin
    from mdit_py_plugins.front_matter import front_matter_plugin

    return MarkdownIt("commonmark", {"html": True}).enable("table").use(front_matter_plugin).use(admon_plugin)


def _only_links(inline) -> bool:
    """An inline run of nothing but links, images and punctuation: a link-only or image line."""
    inside = 0
    text = []
    for child in inline.children or []:
        if child.type == "link_open":
            inside += 1
        elif child.type == "link_close":
            inside -= 1
        elif child.type == "image":
            continue
        elif child.type in ("text", "code_inline", "html_inline") and not inside:
            text.append(child.content)
    words = re.findall(r"\w+", " ".join(text))
    return len(words) <= 2 and any(c.type in ("link_open", "image", "html_inline") for c in inline.children or [])


def _only_code(inline) -> bool:
    children = inline.children or []
    return any(c.type == "code_inline" for c in children) and all(
        c.type in ("code_inline", "softbreak", "hardbreak") or (c.type == "text" and not c.content.strip())
        for c in children)


def markdown_blocks(text: str) -> list[Block]:
    tokens = _markdown_parser().parse(text)
    starts = line_starts(text)  # markdown-it's line map counts \r\n, \r and \n as line ends

    def span(line_range) -> tuple[int, int]:
        a, b = line_range
        end = starts[b] if b < len(starts) else len(text)
        return _trimmed(text, starts[a] if a < len(starts) else len(text), end)

    out: list[Block] = []
    sections = Sections()
    stack: list[str] = []  # open containers: "li", "blockquote", "admonition"
    item_opened = False  # the next paragraph is a list item's first
    for i, t in enumerate(tokens):
        depth = stack.count("li")
        if t.type in ("list_item_open", "blockquote_open", "admonition_open"):
            stack.append({"list_item_open": "li", "blockquote_open": "blockquote"}.get(t.type, "admonition"))
            item_opened = t.type == "list_item_open"
            if t.type == "admonition_open" and t.map:  # "!!! note": its title line is context
                s, e = span((t.map[0], t.map[0] + 1))
                out.append(Block("context", s, e, depth=depth, section=sections.now))
        elif t.type in ("list_item_close", "blockquote_close", "admonition_close"):
            if stack:
                stack.pop()
            item_opened = False
        elif t.type == "heading_open" and t.map:
            s, e = span(t.map)
            path = sections.enter(int(t.tag[1:]), heading_text(tokens[i + 1].content))
            out.append(Block("heading", s, e, level=int(t.tag[1:]), depth=depth, section=path))
        elif t.type == "paragraph_open" and t.map:
            inline = tokens[i + 1]
            s, e = span(t.map)
            quoted = "blockquote" in stack or "admonition" in stack
            kind = "item" if item_opened else ("quote" if quoted else "paragraph")
            item_opened = False
            if kind == "item":
                marker = _ITEM_MARKER.match(text, s)
                s = marker.end() if marker and marker.end() < e else s
            if quoted:
                marker = _QUOTE_MARKER.match(text, s)
                s = marker.end() if marker and marker.end() < e else s
            if _only_links(inline) or _INCLUDE.match(inline.content):
                kind = "context"
            elif _only_code(inline):
                kind = "code"  # a command on a line of its own: `tar xf archive.tar`
            out.append(Block(kind, s, e, depth=depth, section=sections.now))
        elif t.type in ("fence", "code_block") and t.map:
            s, e = span(t.map)
            out.append(Block("code", s, e, depth=depth, section=sections.now))
            item_opened = False
        elif t.type == "tr_open" and t.map:
            s, e = span(t.map)
            out.append(Block("row", s, e, depth=depth, section=sections.now))
        elif t.type in ("html_block", "front_matter") and t.map:
            s, e = span(t.map)
            out.append(Block("context", s, e, depth=depth, section=sections.now))
            item_opened = False
    return [b for b in out if b.end > b.start]


def rst_blocks(text: str) -> list[Block]:
    """reStructuredText blocks: docutils' tree, each node placed by finding its own source lines in order."""
    import docutils.nodes as nodes
    import docutils.utils
    from docutils.frontend import get_default_settings
    from docutils.parsers.rst import Parser

    settings = get_default_settings(Parser)
    settings.file_insertion_enabled = False  # an "include" in an uploaded file must not read the server's files
    settings.raw_enabled = False
    settings.report_level = 5  # unknown roles and directives are kept as text, silently
    settings.halt_level = 5
    settings.warning_stream = _Discard()
    document = docutils.utils.new_document("<rst>", settings)
    try:
        Parser().parse(text, document)
    except Exception:  # noqa: BLE001  (docutils raises many kinds on odd input: the text is still plain text)
        return plain_blocks(text)
    out: list[Block] = []
    cursor = 0

    def place(raw: str) -> tuple[int, int] | None:
        """Where a node's own source lines are, searched in order from the last node placed (docutils expands
        tabs and strips indentation, so a line is matched word by word across any white space)."""
        nonlocal cursor
        lines = [line.split() for line in raw.splitlines() if line.strip()]
        if not lines:
            return None
        start = end = None
        at = cursor
        for words in lines:
            found = re.compile(r"\s+".join(map(re.escape, words))).search(text, at)
            if found is None:
                if start is None:
                    return None
                break  # a line docutils rewrote: the node ends with the last line found
            start = found.start() if start is None else start
            end = at = found.end()
        cursor = end
        return start, end

    def walk(node, path: tuple[str, ...], level: int, depth: int, quoted: bool) -> None:
        for child in node.children:
            if isinstance(child, nodes.system_message):  # an unknown (Sphinx) directive: its text stays
                for block in child.findall(nodes.literal_block):
                    directive(block.rawsource or block.astext(), path, depth)
                continue
            if isinstance(child, (nodes.comment, nodes.substitution_definition, nodes.target, nodes.problematic)):
                continue
            if isinstance(child, nodes.section):
                title = next((c for c in child.children if isinstance(c, nodes.title)), None)
                sub = path
                if title is not None:
                    where = place(title.rawsource or title.astext())
                    sub = path + (heading_text(title.astext()),)
                    if where:
                        out.append(Block("heading", *where, level=level + 1, depth=depth, section=sub))
                walk(child, sub, level + 1, depth, quoted)
            elif isinstance(child, (nodes.paragraph, nodes.term)):
                where = place(child.rawsource or child.astext())
                if where:
                    first = isinstance(child.parent, nodes.list_item) and child.parent.index(child) == 0
                    kind = "item" if first or isinstance(child, nodes.term) else ("quote" if quoted else "paragraph")
                    out.append(Block(kind, *where, depth=depth + isinstance(child, nodes.term), section=path))
            elif isinstance(child, nodes.literal_block):
                raw = child.rawsource or child.astext()
                if raw.lstrip().startswith(".. "):
                    directive(raw, path, depth)
                    continue
                where = place(raw)
                if where:
                    out.append(Block("code", *where, depth=depth, section=path))
            elif isinstance(child, nodes.title):
                continue
            elif isinstance(child, (nodes.list_item, nodes.definition)):
                walk(child, path, level, depth + 1, quoted)
            elif isinstance(child, (nodes.Admonition, nodes.block_quote)):
                walk(child, path, level, depth, True)
            elif isinstance(child, nodes.Element):
                walk(child, path, level, depth, quoted)

    def directive(raw: str, path: tuple[str, ...], depth: int) -> None:
        """An unknown directive, as docutils gives it back (its text is placed in the file, then read there)."""
        where = place(raw)
        if where:
            entry(where[0], where[1], path, depth)

    def entry(start: int, end: int, path: tuple[str, ...], depth: int) -> None:
        """The directive at text[start:end]: its first line (and options) is context, its body text
        ("versionadded:: 2.0" and what changed) a quote; a toctree or include is context only. An object
        directive (".. py:data:: NAME") is its markup as context, the name as an item and the body nested under
        it; directives inside its body (a class's methods) are entries of their own, nested under it too."""
        options = re.match(r"[^\n]*(?:\n[ \t]+:[\w-]+:[^\n]*)*", text[start:end])
        body = start + options.end()
        inner = [body + m.start(1) for m in _NESTED_DIRECTIVE.finditer(text[body:end])]
        s, e = _trimmed(text, body, inner[0] if inner else end)
        line = text[start:body].split("\n", 1)[0]
        name = line.lstrip()[3:].split("::", 1)[0].strip()
        signature = line.split("::", 1)[1].strip() if "::" in line else ""
        if (e > s or inner) and signature and OBJECT_DIRECTIVE.fullmatch(name):  # the name, then what is said of it
            at = start + line.index(signature, line.index("::"))
            out.append(Block("context", start, at, depth=depth, section=path))
            out.append(Block("item", at, at + len(signature), depth=depth + 1, section=path))
            out.append(Block("context", at + len(signature), body, depth=depth + 1, section=path))
            if e > s:
                out.append(Block("quote", s, e, depth=depth + 2, section=path))
            depth += 2
        else:
            out.append(Block("context", start, body, depth=depth, section=path))
            if e > s and name not in _CONTEXT_DIRECTIVES:
                out.append(Block("quote", s, e, depth=depth, section=path))
        for a, b in zip(inner, inner[1:] + [end]):
            entry(a, b, path, depth)

    walk(document, (), 0, 0, False)
    return [b for b in out if b.end > b.start]


class _Discard:
    def write(self, _text: str) -> None:
        pass


def line_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in re.finditer(r"\r\n?|\n", text)]
