"""Embedding each distinct encoder input once per build: the table of inputs already embedded.

Documentation repeats itself (copied sections, boilerplate, one paragraph in several files). A chunk whose
encoder input (chunking.encoder_input: its title and heading path, then its text) and answer-unit spans
equal those of a chunk embedded earlier in this build, or of a chunk of the live build being extended,
takes that chunk's vector and unit vectors instead of being encoded again. The ONNX encoders run one text
per call, so a text's vectors do not depend on what else is encoded: a build with reuse equals one without.

The table holds 16-byte keys and store ids, not vectors: reused vectors are read back from the store being
built (FaissStore.stored). Only the chunks a build removes (of changed and deleted files) are copied out
before they go. A store without `stored` (Milvus) gets no reuse.
"""
from __future__ import annotations

import hashlib
from typing import Iterable

import numpy as np

from .chunking import encoder_input, unit_spans
from .records import Chunk, file_of


def input_key(text: str, spans: list[tuple[int, int]]) -> bytes:
    """What a chunk's vectors depend on: its encoder input and its units' spans in it (a 128-bit digest)."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16)
    digest.update(b"\xff")  # never in UTF-8: the text ends here
    digest.update(np.asarray(spans, dtype=np.int64).tobytes())
    return digest.digest()


def chunk_key(chunk: Chunk) -> bytes:
    return input_key(encoder_input(chunk), unit_spans(chunk))


class Reuse:
    """Which encoder inputs the store being built already holds vectors for, and how many chunks reused them.

    Used from one thread (the build's): split() when a group of chunks is handed to the encoder, assemble()
    and remember() when its results are stored, groups stored in the order they were split."""

    def __init__(self, store=None):
        self.store = store if hasattr(store, "stored") else None  # None: every chunk is encoded
        self.ids: dict[bytes, int] = {}  # key -> store id of a chunk with those vectors
        self.kept: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}  # vectors of chunks removed by this build
        self.claimed: set[bytes] = set()  # keys being encoded by groups not stored yet
        self.reused = 0  # chunks that took vectors instead of being encoded

    @classmethod
    def of_live(cls, store, removing: Iterable[str]) -> "Reuse":
        """The table of the live build's chunks, made before the chunks of the `removing` files (changed and
        deleted) leave the store: theirs are copied out, the others are looked up in the store when reused."""
        reuse = cls(store)
        if reuse.store is None:
            return reuse
        removing = set(removing)
        gone: dict[bytes, int] = {}
        for i, c in store.chunks.items():
            key = chunk_key(c)
            (gone if file_of(c.source) in removing else reuse.ids).setdefault(key, i)
        gone = {k: i for k, i in gone.items() if k not in reuse.ids}
        vectors, sentences = store.stored(list(gone.values()))
        reuse.kept = {k: (v, s) for k, v, s in zip(gone, vectors, sentences)}
        return reuse

    def split(self, group: list) -> tuple[list[bytes], list[int]]:
        """(the key of each (chunk, tokens, spans) item, the positions of those to encode): the first item
        with a key nobody holds or encodes yet; the others will take its vectors."""
        keys = [input_key(encoder_input(c), spans) for c, _, spans in group]
        if self.store is None:
            return keys, list(range(len(group)))
        fresh = []
        for i, key in enumerate(keys):
            if key not in self.ids and key not in self.kept and key not in self.claimed:
                self.claimed.add(key)
                fresh.append(i)
        self.reused += len(group) - len(fresh)
        return keys, fresh

    def assemble(self, keys: list[bytes], fresh: list[int], vectors: np.ndarray,
                 sentence_vectors: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Every item's vectors and unit vectors, in order: those encoded (vectors, sentence_vectors: of the
        `fresh` positions), the others from this group, from the store or from the removed chunks."""
        out = np.zeros((len(keys), vectors.shape[1]), dtype=np.float32)
        parts: list = [None] * len(keys)
        here: dict[bytes, int] = {}
        for j, i in enumerate(fresh):
            out[i], parts[i] = vectors[j], sentence_vectors[j]
            here[keys[i]] = j
        rest = [i for i in range(len(keys)) if parts[i] is None]
        stored = [i for i in rest if keys[i] not in here and keys[i] in self.ids]
        if stored:
            found, units = self.store.stored([self.ids[keys[i]] for i in stored])
            for i, v, s in zip(stored, found, units):
                out[i], parts[i] = v, s
        for i in rest:
            if parts[i] is None:
                v, s = (vectors[here[keys[i]]], sentence_vectors[here[keys[i]]]) if keys[i] in here \
                    else self.kept[keys[i]]
                out[i], parts[i] = v, s
        return out, parts

    def remember(self, keys: list[bytes], ids: list[int]) -> None:
        """The store ids the group's items went in under."""
        if self.store is None:
            return
        for key, i in zip(keys, ids):
            self.ids.setdefault(key, i)
            self.claimed.discard(key)
