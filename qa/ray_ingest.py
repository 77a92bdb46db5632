"""Ingestion on Ray Data (`python -m qa index --engine ray [--ray-address auto]`): files are read and
chunked by Ray tasks, chunks embedded by a pool of actors (one model each), and the results streamed back
to this process, which writes them into the store. The same chunking and encoder as the local engine, so
the same chunks and, for the ONNX encoders (one text per run), the same vectors.

Resources: read tasks ask for READ_CPUS of a CPU and the embedding actors together for one CPU fewer
than the cluster has (at least one), so reads can always be scheduled. An actor pool that takes every
CPU starves the read tasks that feed it (a known Ray hang on 2-CPU machines). An actor runs its encoder
on as many threads as the CPUs per actor, rounded up: Ray's CPUs are a scheduling unit, the reads are light.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .config import Config
from .embedding import Embedder
from .errors import QAError
from .records import Chunk

READ_CPUS = 0.25
START_ATTEMPTS = 2  # a local node can time out starting on a busy machine: once more, then one clear error
BATCH = 64  # chunks per actor call
CHUNK_FIELDS = ("id", "source", "start", "end", "line", "text", "page", "section", "title")  # and "units" (JSON)


def _reachable(address: str) -> None:
    """QAError at once for a host:port (or ray://host:port) nobody listens on: Ray itself would retry for
    minutes. "auto" and other forms are left to Ray."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as e:
        raise QAError(f"cannot connect to the Ray cluster at {address}: {e.strerror or e}") from None


def _start(address: str) -> dict:
    import os

    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # Ray's C++ notices; failures still raise in Python
    import ray

    if address:
        _reachable(address)
    attempts = 1 if address else START_ATTEMPTS
    for attempt in range(attempts):
        if ray.is_initialized():
            break
        try:
            if address:
                ray.init(address=address, log_to_driver=False, include_dashboard=False)
            else:  # a local cluster on 127.0.0.1 for this build
                ray.init(log_to_driver=False, include_dashboard=False, _node_ip_address="127.0.0.1",
                         configure_logging=False)
        except Exception as e:  # noqa: BLE001  (Ray raises plain Exceptions, e.g. a node that timed out starting)
            ray.shutdown()
            if attempt + 1 == attempts:
                where = f"connect to the Ray cluster at {address}" if address else "start a local Ray cluster"
                raise QAError(f"cannot {where}: {str(e).splitlines()[0][:300]}") from None
    import logging

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # this process shows its own progress bar
    context.enable_rich_progress_bars = False
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("ray")] + ["ray", "ray.data"]:
        logging.getLogger(name).setLevel(logging.ERROR)
    return ray.cluster_resources()


def _read_and_chunk(row: dict, data_dir: str, model_path: str, chunk_tokens: int, overlap_tokens: int,
                    window_tokens: int) -> list[dict]:
    """Ray task body: the documents of one file, chunked, as rows (a skipped file: one row with a warning)."""
    from .chunking import NOTHING_TO_INDEX, chunk_document, load_tokenizer
    from .reading import read_corpus

    warnings: list[str] = []
    out = []
    tokenizer = load_tokenizer(Path(model_path))
    for doc in read_corpus(Path(data_dir), warnings.append, only={row["file"]}):
        chunks = chunk_document(doc, tokenizer, chunk_tokens, overlap_tokens, window_tokens)
        if not chunks:
            warnings.append(f"skipped {doc.source}: {NOTHING_TO_INDEX}")
        for c in chunks:
            out.append({"file": row["file"], "sha256": doc.file_sha256, "warning": "",
                        **{k: getattr(c, k) for k in CHUNK_FIELDS}, "units": json.dumps(c.units)})
    empty = {"sha256": "", "id": "", "source": "", "start": 0, "end": 0, "line": 0, "text": "", "page": 0,
             "section": "", "title": "", "units": "[]"}
    return out + [{"file": row["file"], "warning": w, **empty} for w in warnings]


def _chunk_of(batch: dict, i: int) -> Chunk:
    """Row i of a batch of chunk rows as a Chunk."""
    fields = {k: (batch[k][i].item() if hasattr(batch[k][i], "item") else batch[k][i]) for k in CHUNK_FIELDS}
    return Chunk(**fields, units=tuple(tuple(u) for u in json.loads(str(batch["units"][i]))))


class _Embed:
    """Ray actor: one encoder, embedding batches of chunk rows (vectors and float16 sentence vectors)."""

    settings: tuple = ()  # set on a subclass made per build (constructor arguments would sit in the object store)

    def __init__(self):
        model, backend, encoder_dir, shared_dir, threads = self.settings
        self.embedder = Embedder(model, backend=backend, encoder_dir=Path(encoder_dir) if encoder_dir else None,
                                 shared_dir=Path(shared_dir) if shared_dir else None, threads=threads)

    def __call__(self, batch: dict) -> dict:
        from .chunking import encoder_input
        from .chunking import unit_spans

        chunks = [_chunk_of(batch, i) for i in range(len(batch["text"]))]
        keep = [i for i, c in enumerate(chunks) if c.text]
        vectors = np.zeros((len(chunks), 384), dtype=np.float32)
        sentences = [b""] * len(chunks)
        if keep:
            found, parts = self.embedder.encode_with_sentences([encoder_input(chunks[i]) for i in keep],
                                                               [unit_spans(chunks[i]) for i in keep])
            vectors = np.zeros((len(chunks), found.shape[1]), dtype=np.float32)
            for j, i in enumerate(keep):
                vectors[i] = found[j]
                sentences[i] = parts[j].astype(np.float16).tobytes()
        return {**batch, "vector": vectors, "sentences": np.array(sentences, dtype=object)}


def ray_ingest(config: Config, embedder: Embedder, only: set[str], note: Callable[[str], None]
               ) -> Iterator[tuple[str, str, list[Chunk], np.ndarray, list[np.ndarray]]]:
    """(file, its sha256, chunks, their vectors, their sentence vectors) in groups, as Ray produces them."""
    import ray

    if not only:
        return
    cpus = int(_start(config.ray_address).get("CPU", 1))
    actors = max(1, cpus - 1)
    embedder.warm_up()  # exports the encoder once, here, before the actors look for it
    ds = ray.data.from_items([{"file": f} for f in sorted(only)])
    read = (str(config.data_dir), str(embedder.path), config.chunk_tokens, config.overlap_tokens,
            embedder.window_tokens)
    ds = ds.flat_map(lambda row: _read_and_chunk(row, *read), num_cpus=READ_CPUS)
    embed = type("Embed", (_Embed,), {"settings": (config.model, embedder.backend, str(embedder.encoder_dir or ""),
                                                   str(embedder.shared_dir or ""), math.ceil(cpus / actors))})
    ds = ds.map_batches(embed, batch_size=BATCH, batch_format="numpy", num_cpus=1, concurrency=actors)
    dimension = embedder.dimension
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        groups: dict[tuple[str, str], tuple[list, list, list]] = {}
        for i in range(len(batch["file"])):
            if batch["warning"][i]:
                note(str(batch["warning"][i]))
                continue
            chunk = _chunk_of(batch, i)
            key = (str(batch["file"][i]), str(batch["sha256"][i]))
            chunks, vectors, sentences = groups.setdefault(key, ([], [], []))
            chunks.append(chunk)
            vectors.append(batch["vector"][i])
            sentences.append(np.frombuffer(batch["sentences"][i], dtype=np.float16).reshape(-1, dimension))
        for (file, sha), (chunks, vectors, sentences) in groups.items():
            yield file, sha, chunks, np.stack(vectors).astype(np.float32), sentences
