"""A vector store in a Milvus collection (a Milvus or Zilliz Cloud server, or a Milvus Lite server), with
the same operations as FaissStore: add, remove by source file, top-k search, chunks and their sentence
vectors by id, plus BM25 full-text search on the server where it supports it (Milvus 2.5 and later).

Everything an app replica needs lives on the server, so replicas keep no local files:
    <name>        id, file, chunk (JSON: source, offsets, line, page, chunk id), text, vector,
                  sentences (float16 sentence vectors, base64), and, with BM25, a sparse field the server
                  fills from text
    <name>_meta   the manifest (model, backend, dimension, chunking, files...), in pieces of JSON text
"""
from __future__ import annotations

import base64
import json
import time
from collections import OrderedDict
from typing import Iterable

import numpy as np

from .errors import IndexCorrupt, QAError
from .records import Chunk, file_of

MAX_TEXT_BYTES = 65535  # Milvus VARCHAR limit
MAX_SENTENCES = 63  # float16 sentence vectors that fit one VARCHAR field; later sentences use the chunk's vector
PIECE = 60000  # characters of manifest JSON per meta row
CONNECT_ATTEMPTS = 3
# Like the app's own BM25: lower case, English stop words, English stems. (Milvus Lite 3.2 accepts the
# filters but applies only the lower-casing.)
ANALYZER = {"tokenizer": "standard",
            "filter": ["lowercase", {"type": "stop", "stop_words": ["_english_"]}, {"type": "stemmer", "language": "english"}]}


class StoreUnavailable(QAError):
    """The Milvus server cannot be reached or refused an operation."""
    public_message = "The document store cannot be reached right now; please retry in a moment."


def collection_name(index_name: str) -> str:
    """A Milvus collection name (letters, digits, underscores; a letter first) from the index's name."""
    cleaned = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in index_name).strip("_") or "index"
    return ("qa_" + cleaned)[:200]


def _pack(vectors: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vectors[:MAX_SENTENCES], dtype=np.float16).tobytes()).decode("ascii")


def _unpack(text: str, dimension: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.float16).reshape(-1, dimension)


class MilvusStore:
    """Cheap to construct; open() connects (and, with create=True, makes the collections afresh)."""

    def __init__(self, uri: str, name: str, dimension: int, cache_size: int = 20000, token: str = ""):
        self.uri = uri
        self.token = token
        self.name = name
        self.meta = f"{name}_meta"
        self.dimension = dimension
        self.client = None
        self.bm25 = False
        self.next_id = 0
        self._rows: OrderedDict[int, tuple[Chunk, str, np.ndarray | None]] = OrderedDict()
        self._by_chunk: dict[str, int] = {}  # chunk id -> store id, for the rows in the cache
        self._cache_size = cache_size

    def connect(self) -> "MilvusStore":
        from pymilvus import MilvusClient

        if self.client is None:
            import logging

            logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # its failed calls become one StoreUnavailable
            for attempt in range(CONNECT_ATTEMPTS):
                try:
                    self.client = MilvusClient(uri=self.uri, token=self.token, timeout=30)
                    break
                except Exception as e:  # a channel the server just closed (GOAWAY) reconnects after a moment
                    if attempt == CONNECT_ATTEMPTS - 1:
                        raise StoreUnavailable(f"cannot use Milvus at {self.uri}: "
                                               f"{str(e).splitlines()[0][:300]}") from None
                    time.sleep(1.0)
        return self

    def open(self, create: bool = False) -> "MilvusStore":
        self.connect()
        try:
            if create:
                self._create()
            elif not self.client.has_collection(self.name):
                raise StoreUnavailable(f"Milvus at {self.uri} has no collection {self.name!r}; build it first")
            fields = {f["name"] for f in self.client.describe_collection(self.name)["fields"]}
            self.bm25 = "sparse" in fields
            self.client.load_collection(self.name)
        except QAError:
            raise
        except Exception as e:  # pymilvus raises its own MilvusException and gRPC errors
            raise StoreUnavailable(f"cannot use Milvus at {self.uri}: {str(e).splitlines()[0][:300]}") from None
        return self

    def _create(self) -> None:
        from pymilvus import DataType, Function, FunctionType

        c = self.client
        for name in (self.name, self.meta):
            if c.has_collection(name):
                c.drop_collection(name)
        schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("file", DataType.VARCHAR, max_length=4096)
        schema.add_field("chunk", DataType.VARCHAR, max_length=8192)
        schema.add_field("sentences", DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dimension)
        index = c.prepare_index_params()
        index.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="IP")
        try:  # server-side BM25 (Milvus 2.5+): a sparse field filled from the text
            schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES, enable_analyzer=True,
                             analyzer_params=ANALYZER)
            schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                         input_field_names=["text"], output_field_names=["sparse"]))
            index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
            c.create_collection(self.name, schema=schema, index_params=index)
        except Exception:  # an older server: text only, the app's own BM25 is used
            if c.has_collection(self.name):  # a half-made attempt
                c.drop_collection(self.name)
            schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
            for field, kind, extra in (("id", DataType.INT64, {"is_primary": True}),
                                       ("file", DataType.VARCHAR, {"max_length": 4096}),
                                       ("chunk", DataType.VARCHAR, {"max_length": 8192}),
                                       ("sentences", DataType.VARCHAR, {"max_length": MAX_TEXT_BYTES}),
                                       ("vector", DataType.FLOAT_VECTOR, {"dim": self.dimension}),
                                       ("text", DataType.VARCHAR, {"max_length": MAX_TEXT_BYTES})):
                schema.add_field(field, kind, **extra)
            index = c.prepare_index_params()
            index.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="IP")
            c.create_collection(self.name, schema=schema, index_params=index)
        meta = c.create_schema(auto_id=False, enable_dynamic_field=False)
        meta.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
        meta.add_field("value", DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
        meta.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # every collection needs a vector field
        index = c.prepare_index_params()
        index.add_index(field_name="v", index_type="AUTOINDEX", metric_type="L2")
        c.create_collection(self.meta, schema=meta, index_params=index)

    # the manifest
    def write_manifest(self, manifest: dict) -> None:
        text = json.dumps(manifest, ensure_ascii=True)
        pieces = [text[i:i + PIECE] for i in range(0, len(text), PIECE)] or [""]
        before = self._piece_count()
        rows = [{"key": f"manifest:{i:06d}", "value": p, "v": [0.0, 0.0]} for i, p in enumerate(pieces)]
        self.client.upsert(self.meta, rows)
        self.client.upsert(self.meta, [{"key": "manifest:count", "value": str(len(pieces)), "v": [0.0, 0.0]}])
        stale = [f"manifest:{i:06d}" for i in range(len(pieces), before)]
        if stale:
            self.client.delete(self.meta, ids=stale)
        self.client.flush(self.meta)

    def _piece_count(self) -> int:
        rows = self.client.query(self.meta, filter='key == "manifest:count"', output_fields=["value"])
        return int(rows[0]["value"]) if rows else 0

    def read_manifest(self) -> dict | None:
        try:
            if not self.client.has_collection(self.meta):
                return None
            self.client.load_collection(self.meta)
            n = self._piece_count()
            rows = self.client.get(self.meta, ids=[f"manifest:{i:06d}" for i in range(n)],
                                   output_fields=["value"]) if n else []
        except Exception as e:
            raise StoreUnavailable(f"cannot use Milvus at {self.uri}: {str(e).splitlines()[0][:300]}") from None
        if not n:
            return None
        pieces = sorted((r["key"], r["value"]) for r in rows)
        try:
            if len(pieces) != n:
                raise ValueError
            return json.loads("".join(v for _, v in pieces))
        except ValueError:
            raise IndexCorrupt(f"the manifest stored in Milvus collection {self.meta!r} is unreadable") from None

    # the VectorStore operations
    def __len__(self) -> int:
        return int(self.client.query(self.name, filter="", output_fields=["count(*)"])[0]["count(*)"])

    def add(self, chunks: list[Chunk], vectors: np.ndarray, sentence_vectors: list[np.ndarray]) -> list[int]:
        """Insert the chunks under ids from self.next_id on (a build sets it from the manifest)."""
        if not len(chunks) == len(vectors) == len(sentence_vectors):
            raise ValueError(f"{len(chunks)} chunks, {len(vectors)} vectors, {len(sentence_vectors)} sentence sets")
        ids = list(range(self.next_id, self.next_id + len(chunks)))
        self.next_id += len(chunks)
        rows = [{"id": i, "file": file_of(c.source), "text": c.text,
                 "chunk": json.dumps({"id": c.id, "source": c.source, "start": c.start, "end": c.end,
                                      "line": c.line, "page": c.page, "section": c.section, "title": c.title,
                                      "units": c.units}),
                 "sentences": _pack(s), "vector": np.asarray(v, dtype=np.float32).tolist()}
                for i, c, v, s in zip(ids, chunks, vectors, sentence_vectors)]
        if rows:
            self.client.insert(self.name, rows)
        return ids

    def remove_files(self, files: Iterable[str]) -> int:
        wanted = sorted(set(files))
        if not wanted:
            return 0
        expr = f"file in {json.dumps(wanted)}"
        gone = int(self.client.query(self.name, filter=expr, output_fields=["count(*)"])[0]["count(*)"])
        self.client.delete(self.name, filter=expr)
        drop = set(wanted)
        for i in [i for i, row in self._rows.items() if file_of(row[0].source) in drop]:
            self._by_chunk.pop(self._rows.pop(i)[0].id, None)
        return gone

    def flush(self) -> None:
        self.client.flush(self.name)

    def search_ids(self, vector: np.ndarray, k: int) -> list[tuple[float, int]]:
        result = self.client.search(self.name, data=[np.asarray(vector, dtype=np.float32)[0].tolist()],
                                    anns_field="vector", limit=k, search_params={"metric_type": "IP"})
        return [(float(h["distance"]), int(h["id"])) for h in result[0]]

    def lexical_top(self, query: str, k: int) -> list[tuple[float, int]]:
        """Server-side BM25: up to k (score, id) pairs, best first (empty without BM25 on the server)."""
        if not self.bm25 or not query.strip():
            return []
        result = self.client.search(self.name, data=[query], anns_field="sparse", limit=k,
                                    search_params={"metric_type": "BM25"})
        return [(abs(float(h["distance"])), int(h["id"])) for h in result[0]]

    def all_texts(self) -> tuple[list[int], list[str]]:
        """Every chunk's id and text (for the app's own BM25 when the server has none)."""
        ids, texts = [], []
        iterator = self.client.query_iterator(self.name, batch_size=1000, filter="id >= 0", output_fields=["text"])
        while batch := iterator.next():
            ids += [int(r["id"]) for r in batch]
            texts += [r["text"] for r in batch]
        iterator.close()
        return ids, texts

    def hybrid_ids(self, vector: np.ndarray, query: str, depth: int) -> list[int]:
        """The server's hybrid search (dense and BM25 requests, fused by RRF): the ids of the candidates, best
        first. The app then scores them by its own fusion (retrieval.py), as with FAISS."""
        from pymilvus import AnnSearchRequest, RRFRanker

        requests = [AnnSearchRequest(data=[np.asarray(vector, dtype=np.float32)[0].tolist()], anns_field="vector",
                                     param={"metric_type": "IP"}, limit=depth),
                    AnnSearchRequest(data=[query], anns_field="sparse", param={"metric_type": "BM25"}, limit=depth)]
        result = self.client.hybrid_search(self.name, requests, ranker=RRFRanker(60), limit=2 * depth)
        return [int(h["id"]) for h in result[0]]

    def prefetch(self, ids: list[int]) -> None:
        """Fetch the rows of these chunks (metadata, text, vectors) in one call, for what follows."""
        self._fetch(ids, vectors=True)

    def _fetch(self, ids: list[int], vectors: bool = False) -> None:
        missing = [i for i in ids if i not in self._rows or (vectors and self._rows[i][2] is None)]
        if missing:
            fields = ["chunk", "text", "sentences"] + (["vector"] if vectors else [])
            for r in self.client.get(self.name, ids=missing, output_fields=fields):
                meta = json.loads(r["chunk"])
                chunk = Chunk(id=meta["id"], source=meta["source"], start=meta["start"], end=meta["end"],
                              line=meta["line"], text=r["text"], page=meta.get("page", 0),
                              section=meta.get("section", ""), title=meta.get("title", ""),
                              units=tuple(tuple(u) for u in meta.get("units", ())))
                vec = np.asarray(r["vector"], dtype=np.float32) if vectors else None
                self._rows[int(r["id"])] = (chunk, r["sentences"], vec)
                self._by_chunk[chunk.id] = int(r["id"])
        for i in ids:
            if i in self._rows:
                self._rows.move_to_end(i)
        while len(self._rows) > self._cache_size:
            _, (old, _, _) = self._rows.popitem(last=False)
            self._by_chunk.pop(old.id, None)

    def similarities(self, vector: np.ndarray, ids: list[int]) -> np.ndarray:
        self._fetch(ids, vectors=True)
        return np.stack([self._rows[i][2] for i in ids]) @ np.asarray(vector, dtype=np.float32)

    def chunk(self, store_id: int) -> Chunk:
        self._fetch([store_id])
        if store_id not in self._rows:
            raise IndexCorrupt(f"chunk {store_id} is not in Milvus collection {self.name!r}")
        return self._rows[store_id][0]

    def sentence_vectors(self, chunk: Chunk) -> np.ndarray:
        i = self._by_chunk.get(chunk.id)
        if i is None:
            raise IndexCorrupt(f"chunk {chunk.id} was not fetched from Milvus collection {self.name!r}")
        self._fetch([i], vectors=True)
        stored = _unpack(self._rows[i][1], self.dimension).astype(np.float32)
        wanted = len(chunk.units)
        if len(stored) < wanted:  # units beyond MAX_SENTENCES: the chunk's own vector stands in
            stored = np.vstack([stored, np.repeat(self._rows[i][2][None, :], wanted - len(stored), axis=0)])
        return stored


class MilvusLexical:
    """BM25 done by the Milvus server, with the interface of lexical.Bm25Index.top."""

    def __init__(self, store: MilvusStore):
        self.store = store

    def top(self, query: str, depth: int):
        found = self.store.lexical_top(query, depth)
        scores = {i: s for s, i in found}
        return [i for s, i in found if s > 0], lambda i: scores.get(i, 0.0)
