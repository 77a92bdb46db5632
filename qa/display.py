"""Showing cited text in the browser safely: Markdown and reStructuredText sources rendered by markdown-it-py with
raw HTML off (a <script> in a document is shown as text), images reduced to their alt text and links to their
words (nothing is loaded from elsewhere); any other source shown as escaped text with its line breaks."""
from __future__ import annotations

import functools
import html
import re
import textwrap

from .structure import MARKDOWN_SUFFIXES, OBJECT_DIRECTIVE, RST_SUFFIXES

_LINE_MARKERS = re.compile(r"[ \t]*(?:(?:[-*+>]|\d{1,9}[.)]|#{1,6})[ \t]+)*")
# Marks around cited text while a passage is rendered, and around the answer inside cited text (with_answer_bold):
# symbols (Unicode category So) that documents do not use, so that Markdown reads them as punctuation and a mark
# next to "**bold**" leaves the emphasis as it is (a private-use character would not count as punctuation)
OPEN, CLOSE, BOLD_OPEN, BOLD_CLOSE = "\U0001D301", "\U0001D302", "\U0001D303", "\U0001D304"
CITE_MARK = "\U0001D305"  # where a citation's marker goes while its text is rendered (answer_html.py)
MARKS = (OPEN, CLOSE, BOLD_OPEN, BOLD_CLOSE, CITE_MARK)
_HTML_MARKS = {OPEN: "<mark>", CLOSE: "</mark>", BOLD_OPEN: "<strong>", BOLD_CLOSE: "</strong>"}


def without_marks(text: str) -> str:
    """A document's text with any character this module uses as a mark replaced (U+FFFD): never read as one."""
    for mark in MARKS:
        if mark in text:
            text = text.replace(mark, "\ufffd")
    return text


def with_answer_bold(text: str, start: int, end: int) -> str:
    """text with the answer span [start, end) (offsets into it) between bold markers that render() turns into
    <strong>; the document's own marker characters never count as markers. Unchanged when the span is empty."""
    text = without_marks(text)
    span = text[start:end] if 0 <= start < end <= len(text) else ""
    if not span.strip() or "\n" in span or span.count("`") % 2:  # never across lines or half a code span
        return text
    return text[:start] + BOLD_OPEN + text[start:end] + BOLD_CLOSE + text[end:]


def _marks_as_html(markup: str) -> str:
    for mark, tag in _HTML_MARKS.items():
        markup = markup.replace(mark, tag)
    return markup


def is_markup(source: str) -> bool:
    return source.lower().endswith(MARKDOWN_SUFFIXES + RST_SUFFIXES)


@functools.lru_cache(maxsize=1)
def _renderer():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.admon import admon_plugin

    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").use(admon_plugin)
    md.renderer.rules["link_open"] = lambda *_: ""
    md.renderer.rules["link_close"] = lambda *_: ""
    md.renderer.rules["image"] = lambda tokens, i, *_: html.escape(tokens[i].content)
    return md


_DIRECTIVE = re.compile(r"[ \t]*\.\. ([\w:-]+)::.*$")
_LIST_ITEM = re.compile(r"[ \t]*(?:[-*+\u2022]|\d+[.)]|#\.|\(?[a-zA-Z]\))[ \t]+\S")
_CODE_DIRECTIVES = {"code-block", "code", "sourcecode", "literalinclude", "doctest", "testcode", "parsed-literal"}
_ROLE = re.compile(r":(?:[\w-]+:)+`([^`]+)`")


def _role_text(m: re.Match) -> str:
    """:meth:`~flask.Flask.run` -> ``run``; :doc:`the guide <guide>` -> ``the guide``."""
    inner = m.group(1)
    inner = re.sub(r"\s*<[^>]*>$", "", inner) or inner
    return f"``{inner.rsplit('.', 1)[-1] if inner.startswith('~') else inner}``".replace("~", "")


def rst_as_markdown(text: str) -> str:
    """reStructuredText shown through the Markdown renderer: roles as code, directive lines dropped, the
    indented block after "::" or a code directive fenced as code, any other indented text (a quote, what a
    ".. py:data::" says of its name) as text."""
    out: list[str] = []
    lines = text.split("\n")
    i = 0
    in_list = False  # inside a list, indentation nests; elsewhere indented text is a quote in rst, never code
    doctest = False  # a ">>>" block and its output lines stay as written (indented: code)
    while i < len(lines):
        line = lines[i]
        bare = line.replace(OPEN, "").replace(CLOSE, "").rstrip()  # as written, without the marks of a citation
        found = _DIRECTIVE.match(bare)
        directive = bool(found)
        literal = bare.endswith("::") and not directive  # ".. note::" is a directive, not a literal block
        indented = bare[:1] in (" ", "\t")
        doctest = bare.lstrip().startswith(">>>") or (doctest and bool(bare.strip()))
        if bare.strip():
            in_list = bool(_LIST_ITEM.match(bare)) or (in_list and indented)
        if found and OBJECT_DIRECTIVE.fullmatch(found.group(1)):
            at = line.index("::") + 2  # ".. py:data:: NAME": the name, as code, then what is said of it
            name = line[at:].strip()
            name = (OPEN if OPEN in line[:at] else "") + name
            if name.replace(OPEN, "").replace(CLOSE, ""):
                tick = "`" * (1 + max((len(r) for r in re.findall(r"`+", name)), default=0))
                out.append(f"{tick}{name}{tick}")
        elif not directive:
            if literal:  # "like this::" reads "like this:"
                at = line.rfind("::")
                line = line[:at] + line[at + 1:]
            if indented and not in_list and not doctest:
                line = line.lstrip(" \t")
            out.append(_ROLE.sub(_role_text, line))
        i += 1
        if not (directive or literal):
            continue
        indent = len(line) - len(line.lstrip())
        block = []
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            if not (block == [] and re.match(r"\s+:[\w-]+:", lines[i])):  # a directive's options
                block.append(lines[i])
            i += 1
        body = [b for b in block if b.strip()]
        if body:
            cut = min(len(b) - len(b.lstrip()) for b in body)
            inner = "\n".join(b[cut:] for b in block).strip("\n")
            name = found.group(1) if found else ""
            if literal or name in _CODE_DIRECTIVES:
                fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", inner)), default=0))
                out.extend(["", fence, inner, fence, ""])
            else:  # a note, a warning, "versionadded": its body is text
                out.extend(["", _ROLE.sub(_role_text, inner), ""])
    return "\n".join(out)


def one_line_html(markup: str) -> str:
    """HTML with its line breaks written as character references, so that a Markdown renderer that receives it
    (the chat's) keeps it as one HTML block and never reads the code inside it as Markdown."""
    return markup.replace("\r", "").replace("\n", "&#10;")


def render(text: str, source: str) -> str:
    """Cited text as safe HTML."""
    if is_markup(source):
        if source.lower().endswith(RST_SUFFIXES):
            text = rst_as_markdown(text)
        return _marks_as_html(_renderer().render(text))
    return f'<p class="qa-passage">{_marks_as_html(html.escape(text))}</p>'


def marked_passage(passage: str, marks: list[tuple[int, int]], source: str) -> str:
    """A passage as safe HTML with the cited spans (offsets into it) marked, line by line, so that a mark
    never changes what a line is (a list item, a code fence)."""
    passage = without_marks(passage)  # the document's own, never a mark
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
        if not marked or body.startswith(("```", "~~~")) or (is_markup(source) and body.startswith("|")):
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


def in_its_block(text: str, passage: str, at: int, source: str) -> str:
    """A cited text that starts inside a code block of its passage (at: its offset there), written so that it
    renders as that code: its lines indented as in the file, and for reStructuredText the "::" or code
    directive that opens the block, for Markdown the fence, put around it. Any other text is returned as it is."""
    if not is_markup(source) or not 0 <= at <= len(passage):
        return text
    line_start = passage.rfind("\n", 0, at) + 1
    before = passage[line_start:at]
    if before.strip():
        return text  # it starts mid-line after other text: a sentence, not the start of a block's line
    if source.lower().endswith(RST_SUFFIXES):
        return _in_rst_block(text, passage[:line_start], before)
    return _in_fence(text, passage, at, before)


def _in_rst_block(text: str, above: str, before: str) -> str:
    """Scanning up from the text's first line past the lines of the block it sits in (indented at least as deep as
    the least indented line seen so far), to the line that opens the block: "::" or a code directive."""
    column = len(before) + len(text) - len(text.lstrip(" \t"))
    least = column
    for line in reversed(above.split("\n")):
        indent = len(line) - len(line.lstrip())
        if not line.strip() or indent >= least:
            continue
        found = _DIRECTIVE.match(line)
        if (found and found.group(1) in _CODE_DIRECTIVES) or (not found and line.rstrip().endswith("::")):
            return f"{line[:indent]}.. code-block::\n\n{before}{text}"
        if indent == 0 or found:
            return text  # a paragraph, list item or other directive (a note): the text is text
        least = indent  # a shallower line of the same block (the "def" above a cited "return"), or of a list
    return text


def _in_fence(text: str, passage: str, at: int, before: str) -> str:
    line = passage.count("\n", 0, at)
    for token in _renderer().parse(passage):
        if token.type in ("fence", "code_block") and token.map and token.map[0] < line < token.map[1] or \
                token.type == "code_block" and token.map and token.map[0] == line:
            if token.type == "fence" and passage.split("\n")[line].lstrip().startswith(token.markup):
                return text  # the cited text is the closing fence onwards
            body = textwrap.dedent(before + text).rstrip("\n")
            tick = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", body)), default=0))
            return f"{tick}{token.info.strip() if token.type == 'fence' else ''}\n{body}\n{tick}"
    return text
