"""The vector store: chunks and their vectors, behind a small interface (add, remove, search, save, load).

FaissStore keeps vectors in a FAISS inner-product index (vectors are unit length, so scores are
cosines) addressed by chunk id, so chunks can be removed by id: exact search (IndexFlatIP in an
IndexIDMap2) for collections up to a size limit, inverted lists beyond it (IndexIVFFlat, about 4*sqrt(n)
lists, NPROBE of them read per query), chosen by shape(). Chunk metadata sits beside it, and so do the
chunks' unit vectors (float16, one row per answer unit of chunk.units).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Protocol

import numpy as np

from .errors import IndexCorrupt
from .records import Chunk, file_of

VECTORS_FILE = "vectors.faiss"
CHUNKS_FILE = "chunks.jsonl"
SENTENCES_FILE = "sentences.npy"
NPROBE = 48  # inverted lists read per query: recall@10 >= 0.98 against exact search at 1M (bench/bench_scale.py)
TRAIN_PER_LIST = 64  # training vectors per inverted list (a sample when there are more)


def ivf_lists(n: int) -> int:
    """Inverted lists for n vectors: about 4*sqrt(n), with at least the 39 training vectors FAISS wants each."""
    return max(1, min(int(min(65536, max(16, 4 * np.sqrt(max(n, 1))))), n // 39))


class VectorStore(Protocol):
    def add(self, chunks: list[Chunk], vectors: np.ndarray, sentence_vectors: list[np.ndarray]) -> list[int]: ...
    def remove(self, sources: Iterable[str]) -> int: ...
    def remove_files(self, files: Iterable[str]) -> int: ...
    def search(self, vectors: np.ndarray, k: int) -> list[list[tuple[float, Chunk]]]: ...
    def search_ids(self, vector: np.ndarray, k: int) -> list[tuple[float, int]]: ...
    def similarities(self, vector: np.ndarray, ids: list[int]) -> np.ndarray: ...
    def chunk(self, store_id: int) -> Chunk: ...
    def prefetch(self, ids: list[int]) -> None: ...
    def sentence_vectors(self, chunk: Chunk) -> np.ndarray: ...
    def save(self, folder: Path) -> None: ...
    def __len__(self) -> int: ...


class FaissStore:
    def __init__(self, dimension: int):
        import faiss

        self.dimension = dimension
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self.chunks: dict[int, Chunk] = {}
        self.sentences: dict[int, np.ndarray] = {}
        self.next_id = 0
        self._by_chunk_id: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def kind(self) -> str:
        import faiss

        return "ivf" if isinstance(faiss.downcast_index(self.index), faiss.IndexIVF) else "flat"

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of every chunk, in id order."""
        ids = np.array(sorted(self.chunks), dtype=np.int64)
        if not len(ids):
            return ids, np.zeros((0, self.dimension), dtype=np.float32)
        return ids, np.asarray(self.index.reconstruct_batch(ids), dtype=np.float32)

    def shape(self, kind: str) -> None:
        """Make the FAISS index exact ("flat") or inverted lists ("ivf"); an inverted index is trained again
        when the collection has grown to need twice its lists or more."""
        import faiss

        if kind == self.kind and (kind == "flat" or ivf_lists(len(self)) < 2 * faiss.downcast_index(self.index).nlist):
            return
        ids, vectors = self.vectors()
        if kind == "flat" or not len(ids):
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))
            index.add_with_ids(vectors, ids)
        else:
            index = ivf_index(vectors, ids)
        self.index = index

    def add(self, chunks: list[Chunk], vectors: np.ndarray, sentence_vectors: list[np.ndarray]) -> list[int]:
        """Store the chunks under new ids (returned, in order)."""
        if not len(chunks) == len(vectors) == len(sentence_vectors):
            raise ValueError(f"{len(chunks)} chunks, {len(vectors)} vectors, {len(sentence_vectors)} sentence sets")
        if not chunks:
            return []
        ids = np.arange(self.next_id, self.next_id + len(chunks), dtype=np.int64)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        self.chunks.update(zip(ids.tolist(), chunks))
        self.sentences.update(zip(ids.tolist(), (np.asarray(v, dtype=np.float16) for v in sentence_vectors)))
        self._by_chunk_id = None
        self.next_id += len(chunks)
        return ids.tolist()

    def stored(self, ids: list[int]) -> tuple[np.ndarray, list[np.ndarray]]:
        """The vectors and float16 unit vectors kept for the given store ids, as add was given them."""
        if not ids:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        vectors = np.asarray(self.index.reconstruct_batch(np.asarray(ids, dtype=np.int64)), dtype=np.float32)
        return vectors, [self.sentences[i] for i in ids]

    def sentence_vectors(self, chunk: Chunk) -> np.ndarray:
        """Unit-length vectors of the chunk's answer units, in the order of chunk.units."""
        if self._by_chunk_id is None:
            self._by_chunk_id = {c.id: i for i, c in self.chunks.items()}
        return self.sentences[self._by_chunk_id[chunk.id]].astype(np.float32)

    def remove(self, sources: Iterable[str]) -> int:
        """Drop every chunk of the given source files; returns how many went."""
        wanted = set(sources)
        ids = [i for i, c in self.chunks.items() if c.source in wanted]
        if ids:
            self.index.remove_ids(np.array(ids, dtype=np.int64))
            for i in ids:
                del self.chunks[i]
                del self.sentences[i]
            self._by_chunk_id = None
        return len(ids)

    def remove_files(self, files: Iterable[str]) -> int:
        """Drop every chunk of the given files, the documents of a .jsonl file ("FILE#ID") included."""
        wanted = set(files)
        return self.remove({c.source for c in self.chunks.values() if file_of(c.source) in wanted})

    def search(self, vectors: np.ndarray, k: int) -> list[list[tuple[float, Chunk]]]:
        """For each query vector, up to k (score, chunk) pairs, best first."""
        if len(self.chunks) == 0:
            return [[] for _ in range(len(vectors))]
        scores, ids = self.index.search(np.ascontiguousarray(vectors, dtype=np.float32), min(k, len(self.chunks)))
        return [[(float(s), self.chunks[int(i)]) for s, i in zip(row_s, row_i) if i >= 0]
                for row_s, row_i in zip(scores, ids)]

    def search_ids(self, vector: np.ndarray, k: int) -> list[tuple[float, int]]:
        """Up to k (score, store id) pairs for one query vector (shape (1, d)), best first."""
        if len(self.chunks) == 0:
            return []
        scores, ids = self.index.search(np.ascontiguousarray(vector, dtype=np.float32), min(k, len(self.chunks)))
        return [(float(s), int(i)) for s, i in zip(scores[0], ids[0]) if i >= 0]

    def similarities(self, vector: np.ndarray, ids: list[int]) -> np.ndarray:
        """Cosine of one query vector with each of the given chunks."""
        stored = self.index.reconstruct_batch(np.asarray(ids, dtype=np.int64))
        return stored @ np.asarray(vector, dtype=np.float32)

    def chunk(self, store_id: int) -> Chunk:
        return self.chunks[store_id]

    def prefetch(self, ids: list[int]) -> None:
        """Nothing to do: everything is in memory (a remote store fetches the rows in one call)."""

    def save(self, folder: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(folder / VECTORS_FILE))
        with (folder / CHUNKS_FILE).open("w", encoding="utf-8") as f:
            for i, c in self.chunks.items():
                f.write(json.dumps({"vid": i, "id": c.id, "source": c.source, "start": c.start, "end": c.end,
                                    "line": c.line, "text": c.text, "page": c.page, "section": c.section,
                                    "title": c.title, "units": c.units, "sentences": len(self.sentences[i])},
                                   ensure_ascii=False) + "\n")
        rows = [self.sentences[i] for i in self.chunks]
        with (folder / SENTENCES_FILE).open("wb") as f:
            np.save(f, np.concatenate(rows) if rows else np.zeros((0, self.dimension), dtype=np.float16))

    @classmethod
    def load(cls, folder: Path, dimension: int) -> "FaissStore":
        import faiss

        store = cls(dimension)
        counts: dict[int, int] = {}
        try:
            store.index = faiss.read_index(str(folder / VECTORS_FILE))
            with (folder / CHUNKS_FILE).open(encoding="utf-8") as f:
                for line in f:
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise ValueError(f"a line of {CHUNKS_FILE} is not a chunk")
                    vid = int(row.pop("vid"))
                    counts[vid] = int(row.pop("sentences"))
                    store.chunks[vid] = Chunk(**row)
            sentences = np.load(folder / SENTENCES_FILE, allow_pickle=False)
        except (OSError, RuntimeError, ValueError, TypeError, KeyError, EOFError) as e:
            raise IndexCorrupt(f"cannot read the index files in {folder}: {str(e).splitlines()[0][:200]}") from None
        if store.index.d != dimension:
            raise IndexCorrupt(f"{VECTORS_FILE} has dimension {store.index.d}, the manifest says {dimension}")
        if store.index.ntotal != len(store.chunks):
            raise IndexCorrupt(f"{VECTORS_FILE} holds {store.index.ntotal} vectors but {CHUNKS_FILE} "
                               f"{len(store.chunks)} chunks")
        if any(len(store.chunks[vid].units) != n for vid, n in counts.items()):
            raise IndexCorrupt(f"{CHUNKS_FILE} has a chunk whose unit count differs from its vectors")
        if sentences.ndim != 2 or len(sentences) != sum(counts.values()) or sentences.shape[1] != dimension:
            raise IndexCorrupt(f"{SENTENCES_FILE} has shape {sentences.shape}, {CHUNKS_FILE} expects "
                               f"{sum(counts.values())} rows of {dimension}")
        at = 0
        for vid, n in counts.items():
            store.sentences[vid] = sentences[at:at + n]
            at += n
        store.next_id = max(store.chunks, default=-1) + 1
        return store


def ivf_index(vectors: np.ndarray, ids: np.ndarray):
    """An inner-product IndexIVFFlat over the vectors, trained on (a sample of) them, addressable by id."""
    import faiss

    dimension = vectors.shape[1]
    lists = ivf_lists(len(ids))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, lists, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = 10
    sample = np.random.default_rng(0).permutation(len(ids))[:TRAIN_PER_LIST * lists]
    index.train(np.ascontiguousarray(vectors[np.sort(sample)], dtype=np.float32))
    index.nprobe = min(NPROBE, lists)
    index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct and remove by chunk id
    index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
    return index
