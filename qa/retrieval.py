"""Retrieval: the question's vector against the store, as ranked Hits."""
from __future__ import annotations

from .embedding import Embedder
from .records import Hit
from .store import VectorStore


def search(store: VectorStore, embedder: Embedder, query: str, k: int) -> list[Hit]:
    vector = embedder.encode_cached([query])
    pairs = store.search(vector, k)[0]
    return [Hit(rank=r, score=score, chunk=chunk) for r, (score, chunk) in enumerate(pairs, start=1)]
