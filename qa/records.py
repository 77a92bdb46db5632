"""The frozen records that cross module boundaries: Document, Block, Chunk, Tokens, Hit, Citation, Answer."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Block:
    """One block of a document's structure (see structure.py); text == document.text[start:end]."""
    kind: str  # heading, paragraph, item (a list item's first paragraph), code, row (of a table), quote, context
    start: int
    end: int
    level: int = 0  # a heading's level (1 = top)
    depth: int = 0  # list nesting: 0 outside lists, 1 in a top-level list item, ...
    section: tuple[str, ...] = ()  # the headings above it, outermost first (a heading: its own path)


@dataclass(frozen=True)
class Document:
    source: str  # path relative to the data folder, with forward slashes
    text: str  # the file decoded as UTF-8 (BOM removed, newlines untouched)
    sha256: str  # of the file's bytes (of its line, for a document of a .jsonl file)
    file_sha256: str = ""  # of the whole file's bytes; "" means the same as sha256
    blocks: tuple[Block, ...] | None = None  # structure found while extracting the text (HTML); None: parse text

    def __post_init__(self):
        if not self.file_sha256:
            object.__setattr__(self, "file_sha256", self.sha256)


_JSONL_DOCUMENT = re.compile(r"(.+?\.jsonl)#", re.IGNORECASE)


def file_of(source: str) -> str:
    """The data file of a chunk's source: FILE for a .jsonl document FILE#ID, else the source itself (a
    file may have # in its name)."""
    found = _JSONL_DOCUMENT.match(source)
    return found.group(1) if found else source


@dataclass(frozen=True)
class Chunk:
    id: str  # stable: a hash of source, offsets and text
    source: str
    start: int  # character offsets into Document.text; text == document.text[start:end]
    end: int
    line: int  # 1-based line of `start`
    text: str
    page: int = 0  # 1-based PDF page of `start`; 0 for formats without pages
    section: str = ""  # the heading path, "Guide > Deployment > Behind a proxy"; "" above every heading
    title: str = ""  # the document's title (its first top heading, else its file name), put before it when embedded
    units: tuple[tuple[int, int], ...] = ()  # the answer units inside it (file offsets), in order; see units.py

    def __post_init__(self):
        if self.units and not isinstance(self.units[0], tuple):  # read back from JSON as lists
            object.__setattr__(self, "units", tuple(tuple(u) for u in self.units))


@dataclass(frozen=True, eq=False)
class Tokens:
    """A chunk's word pieces as the chunker counted them, so that the embedder need not tokenize it again."""
    ids: np.ndarray  # int64 token ids of chunking.encoder_input(chunk), without the model's special tokens
    offsets: np.ndarray  # int64 [len(ids), 2]: each piece's (start, end) in encoder_input(chunk)


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float
    chunk: Chunk

    def to_json(self) -> dict:
        c = self.chunk
        return {"rank": self.rank, "score": round(self.score, 4), "chunk_id": c.id,
                "source": c.source, "section": c.section, "start": c.start, "end": c.end, "text": c.text}


@dataclass(frozen=True)
class Citation:
    n: int
    source: str
    start: int  # offsets of the cited sentence in the source file's text
    end: int
    line: int
    text: str  # the cited sentence, exactly text[start:end] of the source
    passage: str  # the chunk the sentence was found in
    passage_start: int
    score: float
    page: int = 0  # 1-based PDF page of the sentence; 0 for formats without pages
    section: str = ""  # the heading path of the passage
    answer_start: int = -1  # the answer inside the cited text as the reader found it (file offsets); -1: none
    answer_end: int = -1

    def to_json(self) -> dict:
        out = {"n": self.n, "source": self.source, "section": self.section, "start": self.start, "end": self.end,
               "line": self.line, "text": self.text, "passage": self.passage,
               "passage_start": self.passage_start, "score": round(self.score, 4)}
        if self.page:
            out["page"] = self.page
        if self.answer_start >= 0:
            out["answer_start"], out["answer_end"] = self.answer_start, self.answer_end
        return out


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    abstained: bool
    citations: tuple[Citation, ...]
    notice: str = ""  # e.g. "Your question was trimmed to 2000 characters."
    confidence: float = 0.0  # the best sentence's answer score; below the threshold it abstains

    def to_json(self) -> dict:
        out = {"question": self.question, "answer": self.answer, "abstained": self.abstained,
               "confidence": round(self.confidence, 4), "citations": [c.to_json() for c in self.citations]}
        if self.notice:
            out["notice"] = self.notice
        return out
