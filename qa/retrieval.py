"""Retrieval: dense (the question's vector against the store) and lexical (BM25) candidates, fused.

Both rankers score every candidate either of them found, so the fusion sees full score columns:
  dense = (1 - SENTENCE_SHARE) * cosine(question, chunk) + SENTENCE_SHARE * max cosine(question, its sentences)
  fused = DENSE_WEIGHT * dense + (1 - DENSE_WEIGHT) * bm25 / max(bm25 of the candidates)
The sentence vectors are the ones stored for answering, so this costs no encoding. The weights were
tuned on the SciFact train split and on the even-numbered SQuAD dev articles (bench/tune_fusion.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .embedding import Embedder
from .lexical import Bm25Index  # or any lexical index with top(query, depth)
from .records import Hit
from .store import VectorStore

DENSE_WEIGHT = 0.7
SENTENCE_SHARE = 0.8
CANDIDATES = 100  # from each ranker, before fusion
MAX_DEPTH = 1600  # candidates looked at when copies of passages crowd out k distinct ones


def fuse(dense: np.ndarray, lexical: np.ndarray, weight: float = DENSE_WEIGHT) -> np.ndarray:
    """Fused scores of candidates, given each one's cosine and BM25 score."""
    top = float(lexical.max()) if len(lexical) else 0.0
    scaled = lexical / top if top > 0 else np.zeros_like(lexical)
    return weight * dense + (1 - weight) * scaled


def dense_search(store: VectorStore, embedder: Embedder, query: str, k: int) -> list[Hit]:
    vector = embedder.encode_cached([query])
    pairs = store.search(vector, k)[0]
    return [Hit(rank=r, score=score, chunk=chunk) for r, (score, chunk) in enumerate(pairs, start=1)]


@dataclass(frozen=True)
class Candidates:
    """The chunks either ranker found for a query, each scored by both."""
    ids: list[int]  # store ids
    cosine: np.ndarray  # question vs chunk
    sentence_cosine: np.ndarray  # question vs the chunk's best answer unit
    bm25: np.ndarray


def candidates(store: VectorStore, lexical: Bm25Index, vector: np.ndarray, query: str,
               depth: int = CANDIDATES) -> Candidates:
    """The `depth` best chunks by vector and the `depth` best by BM25 (vector: shape (1, d))."""
    lexical_ids, bm25 = lexical.top(query, depth)
    if getattr(store, "bm25", False) and query.strip():  # Milvus with full-text search: one hybrid (RRF) call
        ids = store.hybrid_ids(vector, query, depth)
    else:
        ids = list(dict.fromkeys([i for _, i in store.search_ids(vector, depth)] + lexical_ids))
    store.prefetch(ids)
    if not ids:
        empty = np.zeros(0, dtype=np.float32)
        return Candidates([], empty, empty, empty)
    cosine = store.similarities(vector[0], ids)
    units = [store.sentence_vectors(store.chunk(i)) for i in ids]
    sentences = np.array([float((u @ vector[0]).max()) if len(u) else float(c) for u, c in zip(units, cosine)],
                         dtype=np.float32)  # a chunk with no answer unit (code only): its own cosine
    return Candidates(ids, cosine, sentences, np.array([bm25(i) for i in ids], dtype=np.float32))


def hybrid_search(store: VectorStore, lexical: Bm25Index | None, embedder: Embedder, query: str, k: int,
                  weight: float = DENSE_WEIGHT, depth: int = CANDIDATES) -> list[Hit]:
    """The k best chunks by fused dense and BM25 score (dense only when there is no BM25 index), each text
    once."""
    if lexical is None or weight >= 1.0:
        return dense_search(store, embedder, query, k)
    vector = embedder.encode_cached([query])
    depth = max(depth, k)
    while True:
        hits = _fused_hits(store, candidates(store, lexical, vector, query, depth), weight, k)
        if len(hits) == k or depth >= min(len(store), MAX_DEPTH):
            return hits
        depth *= 4  # copies of the same passages filled the candidates: look deeper for k distinct ones


def _fused_hits(store: VectorStore, found: Candidates, weight: float, k: int) -> list[Hit]:
    """The k best distinct texts among the candidates by fused score."""
    if not found.ids:
        return []
    dense = (1 - SENTENCE_SHARE) * found.cosine + SENTENCE_SHARE * found.sentence_cosine
    fused = fuse(dense, found.bm25, weight)
    hits: list[Hit] = []
    seen: set[str] = set()
    for j in np.argsort(-fused, kind="stable"):
        chunk = store.chunk(found.ids[j])
        if chunk.text in seen:  # a copy of a passage already found (duplicate files): room for another one
            continue
        seen.add(chunk.text)
        hits.append(Hit(rank=len(hits) + 1, score=float(fused[j]), chunk=chunk))
        if len(hits) == k:
            break
    return hits
