"""Ingesting files into a store: reading and chunking them on a helper thread while the chunks before them are
embedded (two groups at once on the ONNX backends), each distinct encoder input encoded once (dedup.py), with a
progress bar over the files; or the same on a Ray cluster (ray_ingest.py). indexing.py and milvus_index.py run it
for a build."""
from __future__ import annotations

import queue
import sys
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

import numpy as np

from .chunking import NOTHING_TO_INDEX, chunk_with_tokens, encoder_input, load_tokenizer, unit_spans
from .config import Config
from .dedup import Reuse
from .embedding import GPU_BATCH_SIZE, Embedder
from .lexical import tokenize as lexical_tokenize
from .reading import read_corpus
from .records import Chunk, Tokens, file_of
from .store import FaissStore

ENCODE_GROUP = 128  # chunks per encode call; the progress bar moves once per group
FIRST_GROUP = 4  # the first encode call's chunks; each next call doubles it, up to ENCODE_GROUP
READ_AHEAD = 256  # documents read and chunked ahead of the embedding


def ingest(config: Config, embedder: Embedder, store, shas: dict[str, str | None], only: list[str],
           files: dict[str, dict], warn: Callable[[str], None], progress: bool,
           words: dict[str, list[str]] | None = None, reuse: Reuse | None = None) -> tuple[int, int]:
    """Read, chunk and embed the given files into the store, counting each file's chunks in `files` (a file
    skipped with a warning gets an entry with none, so the next build sees no change); returns (chunks added,
    files skipped). shas: each file's sha256, or None where it is hashed as it is read. words: filled with the
    BM25 tokens of the chunks embedded here (by text), worked out beside the encoder. reuse: the encoder inputs
    the store holds vectors for (a chunk with one of them is not encoded again; it counts the chunks that were
    not); None: a table of this build's own (no reuse for a store that cannot give vectors back: Milvus).
    config.engine "ray" does it on a Ray cluster instead (no reuse there)."""
    from tqdm import tqdm

    warnings: list[str] = []

    def note(message: str) -> None:
        warnings.append(message)
        warn(message)

    bar = tqdm(total=len(only), unit="file", desc="Indexing", disable=not progress, file=sys.stderr)
    added = 0
    read: dict[str, str] = {}  # the sha256 of each file as the reader read it, by source
    if config.engine == "ray":
        from .ray_ingest import ray_ingest

        for file, sha, group, vectors, sentence_vectors in ray_ingest(config, embedder, set(only), note):
            entry = files.setdefault(file, {"sha256": sha, "chunks": 0})
            entry["chunks"] += len(group)
            store.add(group, vectors, sentence_vectors)
            added += len(group)
            bar.set_postfix_str(f"{added} chunks", refresh=False)
            bar.update(min(1, bar.total - bar.n))  # a file's chunks may come in several groups
    else:
        added = _ingest_here(config, embedder, store, set(only), files, note, bar, {} if words is None else words,
                             read, Reuse(store) if reuse is None else reuse)
    bar.update(max(0, bar.total - bar.n))  # skipped files count as done
    bar.close()
    for source in only:
        if source not in files:  # skipped: known by the hash of the bytes judged, so that a change is seen
            files[source] = {"sha256": shas[source] or read.get(source, ""), "chunks": 0}
    return added, len(warnings)


def _ingest_here(config: Config, embedder: Embedder, store, only: set[str], files: dict[str, dict],
                 note: Callable[[str], None], bar, words: dict[str, list[str]], read: dict[str, str],
                 reuse: Reuse) -> int:
    added = 0
    tokenizer = load_tokenizer(embedder.path)
    pending: list[tuple[Chunk, Tokens, list[tuple[int, int]]]] = []
    group = FIRST_GROUP  # small at first, so that the encoder starts while the reader is still on the first files
    # Files are read and chunked in another thread while the chunks before them are embedded. The ONNX
    # backends embed two groups at once (two threads sharing the encoder's one-text workers, the older group's
    # texts first), so the workers never wait for a group's last text or for its chunks to be stored; torch
    # runs each batch on every core already, one group at a time.
    at_once = 2 if (embedder.backend != "torch" and embedder.threads > 1) or embedder.device == "cuda" else 1
    # (one thread, serving: one run; a GPU encodes one group while the last one is stored)
    largest = GPU_BATCH_SIZE if embedder.device == "cuda" else ENCODE_GROUP
    with ThreadPoolExecutor(at_once, thread_name_prefix="qa-embed") as embedding:
        running: deque[tuple[list, list[bytes], list[int], Future]] = deque()  # (items, keys, fresh, job)

        remaining: dict[str, int] = {}  # chunks not yet stored, by file: a file is done when it reaches 0

        count = [0]  # chunks stored so far

        def stored(chunks: list[Chunk]) -> None:
            done = 0
            count[0] += len(chunks)
            for c in chunks:
                file = file_of(c.source)
                remaining[file] -= 1
                done += remaining[file] == 0
            bar.set_postfix_str(f"{count[0]} chunks", refresh=False)
            bar.update(min(done, bar.total - bar.n))

        def embed(items: list) -> None:
            keys, fresh = reuse.split(items)  # only the first chunk of each new encoder input is encoded
            running.append((items, keys, fresh, embedding.submit(_embed, embedder, [items[i] for i in fresh])))
            if len(running) == at_once:
                stored(_store(store, running.popleft(), words, reuse))

        try:
            for doc, doc_chunks in _read_and_chunk(config, only, note, tokenizer, read, embedder.window_tokens):
                entry = files.setdefault(file_of(doc.source), {"sha256": doc.file_sha256, "chunks": 0})
                entry["chunks"] += len(doc_chunks)
                remaining[file_of(doc.source)] = remaining.get(file_of(doc.source), 0) + len(doc_chunks)
                if not doc_chunks:  # read, but nothing in it is text to answer from
                    note(f"skipped {doc.source}: {NOTHING_TO_INDEX}")
                    if remaining[file_of(doc.source)] == 0:
                        bar.update(min(1, bar.total - bar.n))
                pending.extend(doc_chunks)
                added += len(doc_chunks)
                while len(pending) >= group:
                    embed(pending[:group])
                    del pending[:group]
                    group = min(2 * group, largest)
            if pending:
                embed(pending)
            while running:
                stored(_store(store, running.popleft(), words, reuse))
        finally:
            for *_, job in running:
                job.cancel()
    return added


def _read_and_chunk(config: Config, only: set[str], note: Callable[[str], None], tokenizer,
                    hashes: dict[str, str], window_tokens: int):
    """(document, its chunks) for each document of the given files, read and chunked by a helper thread
    (up to READ_AHEAD documents ahead of the caller; an error it meets is raised here). Each chunk comes
    with its word pieces and its sentences' spans, so the embedding step does not work them out again."""
    found: queue.Queue = queue.Queue(maxsize=READ_AHEAD)
    done, stop = object(), threading.Event()

    def hand_over(item) -> bool:
        while not stop.is_set():
            try:
                found.put(item, timeout=0.2)
                return True
            except queue.Full:
                pass
        return False

    def produce() -> None:
        try:
            for doc in read_corpus(config.data_dir, note, only=only, hashes=hashes):
                chunks = [(c, tokens, unit_spans(c)) for c, tokens in
                          chunk_with_tokens(doc, tokenizer, config.chunk_tokens, config.overlap_tokens,
                                            window_tokens)]
                if not hand_over((doc, chunks)):
                    return  # the build stopped
        except BaseException as e:  # noqa: BLE001  (handed to the caller)
            hand_over(e)
        hand_over(done)

    reader = threading.Thread(target=produce, name="qa-read", daemon=True)
    reader.start()
    try:
        while (item := found.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:  # finished, failed or abandoned: the reader stops too
        stop.set()
        reader.join()


def _embed(embedder: Embedder, group: list[tuple[Chunk, Tokens, list]]):
    """(their vectors, their units' vectors, their BM25 tokens by encoder input) of one group's chunks."""
    if not group:
        return np.zeros((0, embedder.dimension), dtype=np.float32), [], {}
    chunks, tokens, spans = zip(*group)
    texts = [encoder_input(c) for c in chunks]
    vectors, sentence_vectors = embedder.encode_with_sentences(texts, list(spans), tokens=list(tokens))
    return vectors, sentence_vectors, dict(zip(texts, lexical_tokenize(texts)))


def _store(store: FaissStore, running: tuple, words: dict[str, list[str]], reuse: Reuse) -> list[Chunk]:
    """Store one group's chunks in order, the encoded ones' vectors with the reused ones' (see dedup.py)."""
    items, keys, fresh, job = running
    vectors, sentence_vectors, tokens = job.result()
    vectors, sentence_vectors = reuse.assemble(keys, fresh, vectors, sentence_vectors)
    chunks = [c for c, _, _ in items]
    reuse.remember(keys, store.add(chunks, vectors, sentence_vectors))
    words.update(tokens)  # BM25 tokens by encoder input (a reused chunk's are its first one's)
    return chunks
