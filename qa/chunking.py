"""Sentence splitting and unit-aware chunking, measured in the model's own word pieces.

Every span is a pair of character offsets into the document text, so text == doc.text[start:end]. A chunk
packs whole answer units (units.py) of one section; its title and heading path go before its text when it is
embedded and BM25-indexed (encoder_input), while its stored text and offsets stay the file's own.
"""
from __future__ import annotations

import bisect
import functools
import hashlib
import re
from pathlib import Path

import numpy as np

from .extracting import PAGE_BREAK
from .lexical import reading_plain_words
from .records import Chunk, Document, Tokens, file_of
from .structure import MARKDOWN_SUFFIXES, RST_SUFFIXES, document_blocks
from .units import Atom, answer_units, sentence_atoms

# A sentence ends at . ! ? or … (plus closing quotes/brackets) before whitespace, and at every line break.
_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s)|\n")
# Markdown/list markers at the start of a line are not part of the sentence: "# Title", "- item", "2. item", "> quote"
_LINE_MARKER = re.compile(r"(?:#{1,6}|[-*+>]|\d{1,3}[.)])[ \t]+")
_LAST_WORD_REVERSED = re.compile(r"\W*([\w.]+)")  # the last word, matched in the reversed 64 characters before a sentence end
MODEL_WINDOW = 254  # word pieces all-MiniLM-L6-v2 reads (+2 special tokens); Embedder.window_tokens for others
MAX_PREFIX_CHARS = 160  # of the title and heading path put before a chunk (about 40 word pieces at most)
_ABBREV = {"mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "e.g", "i.e", "no", "art", "fig", "cf",
           "inc", "ltd", "jr", "sr", "u.s", "u.k", "approx", "dept", "vol", "pp", "ca", "a.k.a", "viz", "resp"}
_INITIALISM = re.compile(r"(?:[a-z]\.)+[a-z]")  # "p.m", "n.b": ends a sentence only before a capital
_NEXT_CHARACTER = re.compile(r"\s*(\S)")
NOTHING_TO_INDEX = "no text to index (only headings, links, directives or markup)"  # a file read, but no chunk


def sentence_spans(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """(start, end) of each sentence in text, whitespace trimmed, shifted by offset."""
    spans = []
    start = 0
    for m in _END.finditer(text):
        end = m.end()
        if m.group() != "\n":
            lo = max(start, m.start() - 64)
            word = _LAST_WORD_REVERSED.match(text[m.start():lo - 1 if lo else None:-1])
            written = word.group(1)[::-1].rstrip(".") if word else ""
            stem = written.lower()
            acronym = written == "CA"  # "a CA." (certificate authority) ends a sentence; "ca." (circa) does not
            if (stem in _ABBREV and not acronym) or (len(stem) == 1 and stem.isalpha()):
                continue  # "e.g. the", "J. Smith": not a sentence end
            after = _NEXT_CHARACTER.match(text, end)
            if _INITIALISM.fullmatch(stem) and not (after and after.group(1).isupper()):
                continue  # "at 5 p.m. on": not a sentence end; "at 5 p.m. Then": one
            if stem.isdigit() and not text[start:m.start() - len(stem)].strip() and (start == 0 or text[start - 1] == "\n"):
                continue  # "2. item" at the start of a line: a list number
        spans.append((start, end))
        start = end
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        piece = text[s:e]
        stripped = piece.strip()
        if stripped and (s == 0 or text[s - 1] == "\n"):
            marker = _LINE_MARKER.match(stripped)
            if marker and marker.end() < len(stripped):
                piece, s = piece.lstrip()[marker.end():], s + len(piece) - len(piece.lstrip()) + marker.end()
                stripped = piece.strip()
        if stripped:
            s2 = s + (len(piece) - len(piece.lstrip()))
            out.append((offset + s2, offset + s2 + len(stripped)))
    return out


@functools.lru_cache(maxsize=4)
def load_tokenizer(model_path: Path):
    """The model's fast tokenizer (tokenizers only: no torch import), without truncation or padding, reading
    mnemonic words as plain words (lexical.reading_plain_words); loaded once per process (it is only read from,
    by any number of threads)."""
    from tokenizers import Tokenizer

    tok = reading_plain_words(Tokenizer.from_file(str(model_path / "tokenizer.json")))
    tok.no_truncation()
    tok.no_padding()
    return tok


def chunk_id(source: str, start: int, end: int, text: str) -> str:
    return hashlib.sha256(f"{source}\0{start}\0{end}\0{text}".encode()).hexdigest()[:16]


class _Lines:
    """Line and page (for text extracted from a PDF) of offsets into one text, found by bisection."""

    def __init__(self, text: str):
        self.breaks = [m.start() for m in re.finditer("\n", text)]
        self.pages = [m.start() for m in re.finditer(PAGE_BREAK, text)] if PAGE_BREAK in text else None

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.breaks, offset - 1) + 1

    def page_of(self, offset: int) -> int:
        """1-based page of an offset in text extracted from a PDF (pages end at PAGE_BREAK); 0 when the
        text has no pages."""
        return bisect.bisect_left(self.pages, offset) + 1 if self.pages is not None else 0


def chunk_document(doc: Document, tokenizer, max_tokens: int, overlap_tokens: int,
                   window_tokens: int = MODEL_WINDOW) -> list[Chunk]:
    """Pack whole answer units into chunks of at most max_tokens word pieces (a chunk opening with a longer unit
    takes it whole up to window_tokens), never across a heading; repeat trailing atoms worth up to overlap_tokens
    at the start of the next chunk. An atom longer than max_tokens is cut into windows at word-piece boundaries."""
    return [c for c, _ in chunk_with_tokens(doc, tokenizer, max_tokens, overlap_tokens, window_tokens)]


def split_sentences(lines: bool):
    """A splitter for units.sentence_atoms: sentences of text[start:end]; line breaks end sentences only in
    plain text (in Markdown and rst a line break inside a paragraph is a space)."""
    def split(text: str, start: int, end: int) -> list[tuple[int, int]]:
        piece = text[start:end]
        if lines:
            spans = sentence_spans(piece, offset=start)
        else:  # a quoted paragraph's later lines start with "> ": not part of their sentence
            spans = [(s + len(text[s:e]) - len(text[s:e].lstrip("> \t")), e)
                     for s, e in sentence_spans(piece.replace("\n", " "), offset=start)]
        return [(s, e) for s, e in spans if e > s and not link_only(text[s:e])]
    return split


_LINK = re.compile(r"<[a-z][a-z0-9+.-]*:[^>\s]*>|!?\[[^\]]*\]\([^)]*\)|https?://\S+|`[^`<]*<https?://[^>]*>`_*")


def link_only(sentence: str) -> bool:
    """A line that only points elsewhere ("More information: <https://...>."): context, never a unit."""
    rest, found = _LINK.subn(" ", sentence)
    return bool(found) and len(_WORD_RUN.findall(rest)) <= 2


_WORD_RUN = re.compile(r"\w+")


def document_title(doc: Document, blocks) -> str:
    """The first top-level heading, else the file's name; "" for a .jsonl document (its title leads its text)."""
    if "#" in doc.source and file_of(doc.source) != doc.source:
        return ""
    top = [b for b in blocks if b.kind == "heading"]
    if top:
        first = min(top, key=lambda b: b.level)
        return first.section[-1] if first.section else ""
    stem = doc.source.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return " ".join(stem.replace("_", " ").replace("-", " ").split())


def encoder_prefix(chunk: Chunk) -> str:
    """What is put before a chunk's text when it is embedded and BM25-indexed: its title and heading path."""
    return _prefix(chunk.title, chunk.section)


def _prefix(title: str, section: str) -> str:
    path = [p for p in [title] + (section.split(" > ") if section else []) if p]
    path = [p for i, p in enumerate(path) if i == 0 or p != path[i - 1]]
    return " > ".join(path)[:MAX_PREFIX_CHARS] + "\n" if path else ""


def encoder_input(chunk: Chunk) -> str:
    return encoder_prefix(chunk) + chunk.text


def unit_spans(chunk: Chunk) -> list[tuple[int, int]]:
    """The chunk's answer units as offsets into its encoder input (title and heading path, then its text)."""
    shift = len(encoder_prefix(chunk)) - chunk.start
    return [(s + shift, e + shift) for s, e in chunk.units]


def chunk_with_tokens(doc: Document, tokenizer, max_tokens: int, overlap_tokens: int,
                      window_tokens: int = MODEL_WINDOW) -> list[tuple[Chunk, Tokens]]:
    """chunk_document's chunks, each with the word pieces of its encoder input (encoder_input: title and heading
    path, then the text; see Tokens). A chunk holds at most max_tokens word pieces, except one that opens with a
    unit longer than that (a lead-in with its code example): it takes the unit whole when window_tokens (what the
    model reads) hold it."""
    text = doc.text
    blocks = document_blocks(doc)
    plain = doc.blocks is None and not doc.source.lower().endswith(MARKDOWN_SUFFIXES + RST_SUFFIXES)
    atoms = sentence_atoms(text, blocks, split_sentences(lines=plain))
    if not atoms:
        return []
    encodings = tokenizer.encode_batch([text[a.start:a.end] for a in atoms], add_special_tokens=False)
    # an atom longer than the window becomes windows of it (each its own atom)
    if any(len(enc.ids) > max_tokens for enc in encodings):
        split_atoms, split_encodings = [], []
        for atom, enc in zip(atoms, encodings):
            if len(enc.ids) <= max_tokens:
                split_atoms.append(atom)
                split_encodings.append(enc)
                continue
            for s, e in _windows(atom.start, enc.offsets, max_tokens, overlap_tokens):
                split_atoms.append(Atom(s, e, atom.block))
                split_encodings.append(None)
        atoms, encodings = split_atoms, split_encodings
    sizes = [len(enc.ids) if enc is not None else max_tokens for enc in encodings]
    units = answer_units(text, blocks, atoms)
    unit_end = [i + 1 for i in range(len(atoms))]  # the furthest end of a unit starting at each atom
    for a, b in units:
        unit_end[a] = max(unit_end[a], b)
    headings = np.cumsum([b.kind == "heading" for b in blocks])
    part = [int(headings[a.block]) for a in atoms]  # atoms under the same heading share a part: chunks never cross
    sections = [blocks[a.block].section for a in atoms]
    title = document_title(doc, blocks)
    # what the encoder reads besides the atoms: the title and heading path before a chunk, and any markers
    # ("2. ", "> ", a fence) between its atoms
    heads: dict[int, tuple[str, object]] = {}  # per part: its prefix and the prefix's word pieces (None: no prefix)
    for i, p in enumerate(part):
        if p not in heads:
            prefix = _prefix(title, " > ".join(sections[i]))
            heads[p] = (prefix, tokenizer.encode(prefix, add_special_tokens=False) if prefix else None)
    prefix_tokens = {p: len(head.ids) if head is not None else 0 for p, (_, head) in heads.items()}
    gaps = [text[atoms[j - 1].end:atoms[j].start] if j else "" for j in range(len(atoms))]
    marked = [j for j, g in enumerate(gaps) if g.strip()]
    is_marked = set(marked)
    gap_sizes = [0] * len(atoms)
    for j, enc in zip(marked, tokenizer.encode_batch([gaps[j] for j in marked], add_special_tokens=False)
                      if marked else []):
        gap_sizes[j] = len(enc.ids)

    def unit_size(a: int) -> int:  # word pieces of the unit opening at atom a, with the markers between its atoms
        return sum(sizes[a:unit_end[a]]) + sum(gap_sizes[a + 1:unit_end[a]])

    window = max(max_tokens, window_tokens)
    pieces: list[tuple[int, int]] = []  # atom ranges
    i = 0
    while i < len(atoms):
        room = max(1, max_tokens - prefix_tokens[part[i]])
        fits = window - prefix_tokens[part[i]]  # what a chunk opening with a long unit may take
        grown = unit_end[i] > i + 1 and room < unit_size(i) <= fits
        if grown:
            room = unit_size(i)  # a lead-in with its code (or an item with its command) too long for a chunk: whole
        j, used = i, 0
        while j < len(atoms) and (j == i or (part[j] == part[i] and used + gap_sizes[j] + sizes[j] <= room)):
            used += sizes[j] + (gap_sizes[j] if j > i else 0)
            j += 1
        if j < len(atoms) and part[j] == part[i] and not grown:  # don't cut a unit that would fit a chunk of its own
            # (nor leave a lead-in alone: a unit opening at i keeps what follows it in this chunk)
            straddling = [a for a in range(i + 1, j) if unit_end[a] > j and unit_size(a) <= max(room, fits)
                          and not (a == i + 1 and unit_end[i] > i + 1)]
            if straddling:
                j = straddling[0]
        moved = j < len(atoms) and unit_end[j] > j + 1  # the next chunk opens with a unit of several atoms
        if pieces and j <= pieces[-1][1]:  # only the overlap of the chunk before, cut short by a unit: no chunk
            i = j
            continue
        pieces.append((i, j))
        if j == len(atoms):
            break
        k, back = j, 0
        if part[j] == part[j - 1]:
            while k - 1 > i and back + sizes[k - 1] <= overlap_tokens:
                back += sizes[k - 1]
                k -= 1
            if moved and k == j and j - 1 > i and sizes[j - 1] <= 2 * overlap_tokens:
                k = j - 1  # the sentence before a code example or list opens the next chunk too: they read together
        i = k
    unit_starts = [u for u, _ in units]
    lines = _Lines(text)
    out = []
    for a, b in pieces:
        s, e = atoms[a].start, atoms[b - 1].end
        spans = sorted({(atoms[u].start, atoms[min(v, b) - 1].end)
                        for u, v in units[bisect.bisect_left(unit_starts, a):bisect.bisect_left(unit_starts, b)]})
        chunk = Chunk(id=chunk_id(doc.source, s, e, text[s:e]), source=doc.source, start=s, end=e,
                      line=lines.line_of(s), text=text[s:e], page=lines.page_of(s),
                      section=" > ".join(sections[a]), title=title, units=tuple(spans))
        prefix, head = heads[part[a]]
        joined = all(enc is not None for enc in encodings[a:b]) and not any(m in is_marked for m in range(a + 1, b))
        if joined:  # the chunk's pieces are its atoms' pieces joined (only white space between them)
            ids = np.concatenate([np.asarray(encodings[m].ids, dtype=np.int64) for m in range(a, b)])
            offsets = np.concatenate([np.asarray(encodings[m].offsets, dtype=np.int64).reshape(-1, 2)
                                      + (atoms[m].start - s) for m in range(a, b)])
        else:  # a marker ("2. ", a fence) between atoms, or a window that may start inside a word: tokenize it
            enc = tokenizer.encode(text[s:e], add_special_tokens=False)
            ids = np.asarray(enc.ids, dtype=np.int64)
            offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
        if head is not None:
            ids = np.concatenate([np.asarray(head.ids, dtype=np.int64), ids])
            offsets = np.concatenate([np.asarray(head.offsets, dtype=np.int64).reshape(-1, 2),
                                      offsets + len(prefix)])
        out.append((chunk, Tokens(ids=ids, offsets=offsets)))
    return out


def _windows(base: int, offsets, max_tokens: int, overlap_tokens: int) -> list[tuple[int, int]]:
    step = max(1, max_tokens - overlap_tokens)
    out = []
    for a in range(0, len(offsets), step):
        b = min(a + max_tokens, len(offsets))
        out.append((base + offsets[a][0], base + offsets[b - 1][1]))
        if b == len(offsets):
            break
    return out
