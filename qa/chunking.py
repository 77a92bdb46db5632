"""Sentence splitting and sentence-aware chunking, measured in the model's own word pieces.

Every span is a pair of character offsets into the document text, so text == doc.text[start:end].
"""
from __future__ import annotations

import bisect
import functools
import hashlib
import re
from pathlib import Path

import numpy as np

from .extracting import PAGE_BREAK
from .records import Chunk, Document, Tokens

# A sentence ends at . ! ? or … (plus closing quotes/brackets) before whitespace, and at every line break.
_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s)|\n")
# Markdown/list markers at the start of a line are not part of the sentence: "# Title", "- item", "2. item", "> quote"
_LINE_MARKER = re.compile(r"(?:#{1,6}|[-*+>]|\d{1,3}[.)])[ \t]+")
_LAST_WORD_REVERSED = re.compile(r"\W*([\w.]+)")  # the last word, matched in the reversed 64 characters before a sentence end
_ABBREV = {"mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "e.g", "i.e", "no", "art", "fig", "cf",
           "inc", "ltd", "jr", "sr", "u.s", "u.k", "approx", "dept", "vol", "pp", "ca"}


def sentence_spans(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """(start, end) of each sentence in text, whitespace trimmed, shifted by offset."""
    spans = []
    start = 0
    for m in _END.finditer(text):
        end = m.end()
        if m.group() != "\n":
            lo = max(start, m.start() - 64)
            word = _LAST_WORD_REVERSED.match(text[m.start():lo - 1 if lo else None:-1])
            stem = word.group(1)[::-1].rstrip(".").lower() if word else ""
            if stem in _ABBREV or (len(stem) == 1 and stem.isalpha()):
                continue  # "e.g. the", "J. Smith": not a sentence end
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
    """The model's fast tokenizer (tokenizers only: no torch import), without truncation or padding; loaded
    once per process (it is only read from, by any number of threads)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_path / "tokenizer.json"))
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


def chunk_document(doc: Document, tokenizer, max_tokens: int, overlap_tokens: int) -> list[Chunk]:
    """Pack whole sentences into chunks of at most max_tokens word pieces; repeat trailing sentences
    worth up to overlap_tokens at the start of the next chunk. A sentence longer than max_tokens is
    cut into windows at word-piece boundaries."""
    return [c for c, _ in chunk_with_tokens(doc, tokenizer, max_tokens, overlap_tokens)]


def chunk_with_tokens(doc: Document, tokenizer, max_tokens: int, overlap_tokens: int) -> list[tuple[Chunk, Tokens]]:
    """chunk_document's chunks, each with the word pieces it was measured in (see Tokens)."""
    text = doc.text
    spans = sentence_spans(text)
    if not spans:
        return []
    encodings = tokenizer.encode_batch([text[s:e] for s, e in spans], add_special_tokens=False)
    sizes = [len(enc.ids) for enc in encodings]
    # start, end, and the sentences it packs (None: a window of one long sentence)
    pieces: list[tuple[int, int, list[int] | None]] = []
    i = 0
    while i < len(spans):
        j, used = i, 0
        while j < len(spans) and used + sizes[j] <= max_tokens:
            used += sizes[j]
            j += 1
        if j == i:  # one sentence longer than the window
            pieces.extend((s, e, None) for s, e in _windows(spans[i][0], encodings[i].offsets, max_tokens,
                                                            overlap_tokens))
            i += 1
            continue
        pieces.append((spans[i][0], spans[j - 1][1], list(range(i, j))))
        if j == len(spans):
            break
        k, back = j, 0
        while k - 1 > i and back + sizes[k - 1] <= overlap_tokens:
            back += sizes[k - 1]
            k -= 1
        i = k
    lines = _Lines(text)
    arrays: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # per sentence: ids, offsets in the document

    def sentence_arrays(k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in arrays:
            arrays[k] = (np.asarray(encodings[k].ids, dtype=np.int64),
                         np.asarray(encodings[k].offsets, dtype=np.int64).reshape(-1, 2) + spans[k][0])
        return arrays[k]

    out = []
    for s, e, packed in pieces:
        if packed is None or any(text[spans[k][1]:spans[k + 1][0]].strip() for k in packed[:-1]):
            # a window of a sentence may start inside a word; a list marker ("2. ") between two sentences
            # is in the chunk's text but in no sentence: the chunk's own pieces differ, tokenize it
            enc = tokenizer.encode(text[s:e], add_special_tokens=False)
            ids = np.asarray(enc.ids, dtype=np.int64)
            offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
        else:
            ids = np.concatenate([sentence_arrays(k)[0] for k in packed])
            offsets = np.concatenate([sentence_arrays(k)[1] for k in packed]) - s
        out.append((Chunk(id=chunk_id(doc.source, s, e, text[s:e]), source=doc.source, start=s, end=e,
                          line=lines.line_of(s), text=text[s:e], page=lines.page_of(s)),
                    Tokens(ids=ids, offsets=offsets)))
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
