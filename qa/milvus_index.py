"""Building and loading an index kept in Milvus (config.store == "milvus"), the counterpart of indexing.py.

The collection is named after the index folder's name (index/ -> qa_index) and is updated in place:
chunks of deleted and changed files are deleted by file, new chunks inserted. Before anything is
deleted, the manifest marks the files being replaced as unfinished (sha256 ""), so a build that dies
half-way is completed by the next one rather than leaving files silently missing. Every finished build
bumps manifest["build"], which serving replicas watch to reload.
"""
from __future__ import annotations

import functools
import time
from datetime import datetime, timezone
from typing import Callable

from .config import Config
from .embedding import Embedder
from .errors import EmptyCorpus, IndexMissing, QAError
from .indexing import (FORMAT_VERSION, BuildReport, LoadedIndex, Plan, _changed, _versions, check_manifest,
                       chunking_settings, data_hashes, ingest, rebuild_command)
from .lexical import Bm25Index
from .milvus_store import MilvusLexical, MilvusStore, collection_name
from .reading import unindexed


def open_store(config: Config, dimension: int, create: bool = False) -> MilvusStore:
    return MilvusStore(config.milvus_uri, collection_name(config.index_dir.name), dimension,
                       token=config.milvus_token).open(create=create)


def where(config: Config) -> str:
    return f"Milvus collection {collection_name(config.index_dir.name)} at {config.milvus_uri}"


@functools.lru_cache(maxsize=16)
def _meta_reader(uri: str, name: str, token: str) -> MilvusStore:
    """One connection per collection for reading its manifest (a serving replica does so once a second)."""
    return MilvusStore(uri, name, 1, token=token).connect()


def live_manifest(config: Config) -> dict | None:
    """The manifest stored with the collection, or None when there is none (nothing built yet)."""
    return _meta_reader(config.milvus_uri, collection_name(config.index_dir.name), config.milvus_token).read_manifest()


def build_milvus(config: Config, embedder: Embedder, warn: Callable[[str], None], progress: bool = False,
                 full: bool = False) -> BuildReport:
    t0 = time.perf_counter()
    if not config.data_dir.exists():
        raise EmptyCorpus(f"data folder {config.data_dir} does not exist")
    shas = data_hashes(config)
    manifest = None if full else live_manifest(config)
    if manifest is not None:
        try:
            check_manifest(manifest, config, where(config), ("milvus",))
            if manifest.get("backend") != embedder.backend or manifest.get("dimension") != embedder.dimension:
                manifest = None
        except QAError:
            manifest = None  # another model, chunking or format: start again
    if manifest is not None and not _changed(manifest["files"], shas):
        return BuildReport(files=manifest["file_count"], chunks=manifest["chunk_count"], skipped=0,
                           seconds=time.perf_counter() - t0, folder=config.index_dir, unchanged=len(shas),
                           incremental=True, changed=False)
    store = open_store(config, embedder.dimension, create=manifest is None)
    old_files = manifest["files"] if manifest else {}
    store.next_id = manifest["next_id"] if manifest else 0
    plan = Plan.of(old_files, shas)
    base = {"format_version": FORMAT_VERSION, "model": config.model, "backend": embedder.backend,
            "dimension": embedder.dimension, "index_type": "milvus", "chunking": chunking_settings(config),
            "lexical": "milvus-bm25-english" if store.bm25 else "app-bm25", "build": (manifest or {}).get("build", 0)}
    files = {s: old_files[s] for s in plan.unchanged}
    pending = {**files, **{s: {"sha256": "", "chunks": 0} for s in plan.updated}}
    store.write_manifest({**base, "files": pending, "file_count": len(files), "chunk_count": len(store),
                          "next_id": store.next_id, "built_at": ""})
    chunks_removed = store.remove_files(plan.gone + plan.updated)
    chunks_added, skipped = ingest(config, embedder, store, shas, plan.updated + plan.added, files, warn, progress)
    store.flush()
    total = len(store)
    if not total:
        raise EmptyCorpus(f"no readable document (.txt, .md, .rst, .html, .pdf, .docx, .jsonl) in {config.data_dir}; add some, then run: "
                          f"{rebuild_command(config)}")
    report = plan.report(files, chunks=total, skipped=skipped, seconds=time.perf_counter() - t0,
                         unindexed=unindexed(config.data_dir).summary(),
                         folder=config.index_dir, chunks_added=chunks_added, chunks_removed=chunks_removed,
                         incremental=manifest is not None)
    store.write_manifest({**base, "files": dict(sorted(files.items())), "file_count": report.files,
                          "chunk_count": total, "next_id": store.next_id, "build": base["build"] + 1,
                          "versions": dict(_versions(embedder.backend)),
                          "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return report


def load_milvus(config: Config) -> LoadedIndex:
    """The collection as a LoadedIndex, after checking the manifest stored with it."""
    manifest = live_manifest(config)
    if manifest is None or manifest.get("build", 0) < 1:  # a first build that has not finished yet
        raise IndexMissing(f"no finished index in {where(config)}; build it with: {rebuild_command(config)}")
    check_manifest(manifest, config, where(config), ("milvus",))
    store = open_store(config, int(manifest["dimension"]))
    if store.bm25:
        lexical = MilvusLexical(store)
    else:  # an older server: BM25 in this process over every chunk's text
        ids, texts = store.all_texts()
        lexical = Bm25Index.build(texts, ids)
    return LoadedIndex(manifest=manifest, store=store, lexical=lexical, folder=config.index_dir)
