"""Building the index folder and loading it back, with a versioned manifest checked on load.

Layout of the index folder:
    CURRENT                  the name of the live build, replaced atomically (os.replace)
    builds/<build>/          manifest.json, vectors.faiss, chunks.jsonl, sentences.npy, bm25/
    encoders/                the model exported to ONNX for the onnx backends: a hard link to the machine's
                             shared export (onnx_export.py; a copy where no link can be made), its sha256
                             in the manifest ("encoder")
    .lock                    held by a running build
A build writes builds/.tmp-<build>/, renames it into place, then swaps CURRENT: a reader sees
either the old build or the new one, never a half-written one. What goes into the store (reading, chunking,
embedding the changed files) is ingest.py's.
"""
from __future__ import annotations

import errno
import fcntl
import functools
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from . import __version__
from .chunking import encoder_input
from .config import BACKENDS, Config
from .calibration import new_index_choice
from .cpu import BackendChoice, build_device
from .dedup import Reuse
from .embedding import Embedder
from .errors import EmptyCorpus, IndexBusy, IndexCorrupt, IndexMismatch, IndexMissing, IndexUnwritable, QAError
from .lexical import TOKENIZER, Bm25Index
from .onnx_export import export_sha256
from .reading import file_sha256, list_files, unindexed
from .ingest import ingest
from .store import FaissStore

FORMAT_VERSION = 4  # 2: BM25 beside the vectors; 3: the encoder backend and the FAISS index type; 4: answer units, sections
MANIFEST_FILE = "manifest.json"
CURRENT_FILE = "CURRENT"
BUILDS_DIR = "builds"
ENCODERS_DIR = "encoders"
DISK_FULL_BYTES = 16 * 2**20  # a write that failed with less free space than this is reported as a full disk


@dataclass(frozen=True)
class BuildReport:
    files: int
    chunks: int
    skipped: int
    seconds: float
    folder: Path
    added: int = 0  # files
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    incremental: bool = False
    changed: bool = True  # False: nothing changed since the live build, which stands
    unindexed: str = ""  # what else the data folder holds, e.g. "248 images and 3 other files not indexed"
    chunks_reused: int = 0  # chunks added that took the vectors of an identical encoder input (dedup.py)
    backend: str = ""  # the encoder the build ran
    backend_reason: str = ""  # why, when it was chosen for this CPU (cpu.py) rather than asked for or kept


@dataclass(frozen=True)
class LoadedIndex:
    manifest: dict
    store: FaissStore  # or milvus_store.MilvusStore
    lexical: Bm25Index  # or milvus_store.MilvusLexical
    folder: Path

    @property
    def build_id(self) -> str:
        """Which build this is: its folder, or for a Milvus collection its build counter."""
        return milvus_build_id(self.manifest) if self.manifest.get("index_type") == "milvus" else str(self.folder)


def milvus_build_id(manifest: dict) -> str:
    return f"milvus build {manifest['build']}"


def live_build_id(config: Config) -> str | None:
    """Which build is live now (compared with LoadedIndex.build_id to notice a new one)."""
    if config.store == "milvus":
        from .milvus_index import live_manifest

        manifest = live_manifest(config)
        return milvus_build_id(manifest) if manifest and manifest.get("build") else None
    folder = current_folder(config.index_dir)
    return str(folder) if folder else None


def rebuild_command(config: Config) -> str:
    """The command that (re)builds this index. The data folder is named only when it is known: a default
    data folder next to a custom index folder is probably not what that index was built from."""
    default = Config()
    if config.data_dir != default.data_dir:
        data = f" --data {config.data_dir}"
    else:
        data = "" if config.index_dir == default.index_dir else " --data YOUR_TEXTS_FOLDER"
    index = "" if config.index_dir == default.index_dir else f" --index {config.index_dir}"
    model = "" if config.model == default.model else f" --model {config.model}"
    backend = f" --backend {config.backend}" if config.backend else ""
    store = f" --store milvus --milvus-uri {config.milvus_uri}" if config.store == "milvus" else ""
    return f"python -m qa index{data}{index}{model}{backend}{store}"


def index_kind(config: Config, chunks: int) -> str:
    """flat or ivf, as configured; auto: exact search up to config.flat_limit chunks."""
    if config.index_type == "auto":
        return "flat" if chunks <= config.flat_limit else "ivf"
    return config.index_type


def encoder_dir(config: Config) -> Path:
    """Where the index's ONNX export is: beside the index (a link to the shared one); with a Milvus store (no
    local index folder) the shared cache's, made from the packaged model on each machine."""
    if config.store == "milvus":
        return config.cache_dir / ENCODERS_DIR
    return config.index_dir / ENCODERS_DIR


def live_backend(config: Config) -> str | None:
    """The encoder the live build names (a rebuild keeps it), or None where there is none."""
    if config.store == "milvus":
        from .milvus_index import live_manifest

        backend = (live_manifest(config) or {}).get("backend")
    else:
        try:
            backend = json.loads((current_folder(config.index_dir) / MANIFEST_FILE).read_text(encoding="utf-8"))[
                "backend"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return backend if backend in BACKENDS else None


def new_index_backend(config: Config, notice: Callable[[str], None] | None = None) -> BackendChoice:
    """The encoder a new index gets when none is asked for: torch where the build runs on a CUDA GPU, else the
    one that suits this CPU (cpu.py; timed by calibration.py where its features do not settle it)."""
    if build_device(config.device) == "cuda":
        return BackendChoice("torch", "the build runs on the CUDA GPU, with the torch encoder (questions are "
                             "encoded on the CPU unless --device cuda)")
    return new_index_choice(config.model, config.cache_dir / ENCODERS_DIR, notice)


def chosen_backend(config: Config, notice: Callable[[str], None] | None = None) -> str:
    """The encoder a build uses: the one asked for, else the live build's, else a new index's (new_index_backend,
    which tells notice when it times the encoders)."""
    return config.backend or live_backend(config) or new_index_backend(config, notice).backend


def chunking_settings(config: Config) -> dict:
    return {"chunk_tokens": config.chunk_tokens, "overlap_tokens": config.overlap_tokens,
            "splitter": "units-v6", "sentence_vectors": "unit-span-mean-v1",
            "encoder_words": "plain-mnemonics-v1"}  # lexical.reading_plain_words


@functools.lru_cache(maxsize=None)
def _versions(backend: str) -> dict:
    """The library versions a build records; looked up once per process (the modules it runs stay loaded)."""
    from importlib.metadata import PackageNotFoundError, version

    names = ["faiss-cpu", "bm25s", "numpy", "tokenizers"] + (["torch", "transformers"] if backend == "torch" else
                                                              ["onnxruntime", "torch"])
    found = {"qa": __version__, "python": sys.version.split()[0]}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


class _BuildLock:
    def __init__(self, index_dir: Path):
        self.path = index_dir / ".lock"

    def __enter__(self):
        try:
            self.file = self.path.open("w")
        except OSError as e:
            raise IndexUnwritable(f"cannot build in {self.path.parent}: {e.strerror or e}; the index there "
                                  "stays as it is") from None
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.close()
            raise IndexBusy(f"another build is running on {self.path.parent}; wait for it to finish") from None
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def build_index(config: Config, embedder: Embedder, warn: Callable[[str], None],
                progress: bool = False, full: bool = False) -> BuildReport:
    """Bring the index up to date with config.data_dir in a new build, then make it live.

    Incremental unless full=True (or the live build cannot be extended): files whose sha256 is unchanged
    keep their chunks and vectors and are not read again; chunks of changed and deleted files are removed;
    new and changed files are read, chunked and embedded."""
    if config.store == "milvus":
        from .milvus_index import build_milvus

        return build_milvus(config, embedder, warn, progress=progress, full=full)
    t0 = time.perf_counter()
    if not config.data_dir.exists():
        raise EmptyCorpus(f"data folder {config.data_dir} does not exist")
    seen = current_folder(config.index_dir)
    live = None if full else _loadable_live_build(config)
    shas = _hashes_for(config, live)
    if live is not None and live.manifest["backend"] == embedder.backend and \
            live.manifest["index_type"] == index_kind(config, len(live.store)) and \
            live.manifest.get("lexical") == TOKENIZER and not _changed(live.manifest["files"], shas):
        # nothing to do, and no model to load or lock to take (so a read-only index serves): the live build stands
        return BuildReport(files=live.manifest["file_count"], chunks=len(live.store), skipped=0,
                           seconds=time.perf_counter() - t0, folder=live.folder,
                           unchanged=len(shas), incremental=True, changed=False)
    if not config.index_dir.is_dir():
        config.index_dir.mkdir(parents=True, exist_ok=True)
    with _BuildLock(config.index_dir):
        if current_folder(config.index_dir) != seen:
            # another build went live since the look above (an upload, say): start from it and from the data
            # folder as it is now, or this build would drop the files that build added
            live = None if full else _loadable_live_build(config)
            shas = _hashes_for(config, live)
        previous = live if live is not None and live.manifest["dimension"] == embedder.dimension and \
            live.manifest.get("backend") == embedder.backend and _same_export(live.manifest, embedder) else None
        store, old_files = (previous.store, previous.manifest["files"]) if previous else \
            (FaissStore(embedder.dimension), {})
        plan = Plan.of(old_files, shas)
        choice = None if config.backend or previous is not None or live_backend(config) else \
            new_index_backend(config)  # (only then: on a machine with a GPU it imports torch)
        chosen = choice.reason if choice is not None and embedder.backend == choice.backend else ""
        reuse = Reuse.of_live(store, plan.gone + plan.updated)  # before their chunks leave the store
        chunks_removed = store.remove_files(plan.gone + plan.updated)
        files: dict[str, dict] = {s: old_files[s] for s in plan.unchanged}
        words: dict[str, list[str]] = {}  # BM25 tokens of the chunks embedded here, by text
        chunks_added, skipped = ingest(config, embedder, store, shas, plan.updated + plan.added, files, warn, progress,
                                       words=words, reuse=reuse)
        if not len(store):
            raise EmptyCorpus(f"no readable document (.txt, .md, .rst, .html, .pdf, .docx, .jsonl) in {config.data_dir}; add some, then run: "
                              f"{rebuild_command(config)}")
        store.shape(index_kind(config, len(store)))
        lexical = Bm25Index.build([encoder_input(c) for c in store.chunks.values()], list(store.chunks),
                                  known=words)
        manifest = {
            "format_version": FORMAT_VERSION,
            "model": config.model,
            "backend": embedder.backend,
            **({"backend_reason": chosen} if chosen else {}),
            "dimension": embedder.dimension,
            "index_type": store.kind,
            "chunking": chunking_settings(config),
            "lexical": TOKENIZER,
            "files": dict(sorted(files.items())),
            "file_count": sum(1 for f in files.values() if f["chunks"]),
            "chunk_count": len(store),
            "versions": dict(_versions(embedder.backend)),
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **({"encoder": _export_record(embedder)} if embedder.encoder_path else {}),
        }
        folder = _publish(config.index_dir, store, lexical, manifest)
    return plan.report(files, chunks=len(store), skipped=skipped, seconds=time.perf_counter() - t0, folder=folder,
                       chunks_added=chunks_added, chunks_removed=chunks_removed, incremental=previous is not None,
                       unindexed=unindexed(config.data_dir).summary(), chunks_reused=reuse.reused,
                       backend=embedder.backend, backend_reason=chosen)


def _export_record(embedder: Embedder) -> dict:
    """The ONNX export a build's vectors come from, by name and content (see onnx_export.py)."""
    return {"file": embedder.encoder_path.name, "sha256": export_sha256(embedder.encoder_path)}


def _same_export(manifest: dict, embedder: Embedder) -> bool:
    """Whether the embedder runs the export the manifest's vectors came from (True where either is unknown: an
    older build, torch). Another one (re-exported by other library versions) makes the next build a full one,
    so that one index never mixes vectors of two exports."""
    recorded = (manifest.get("encoder") or {}).get("sha256")
    return not recorded or embedder.encoder_path is None or recorded == export_sha256(embedder.encoder_path)


@dataclass(frozen=True)
class Plan:
    """What a build does with each file of the data folder, by sha256 against the live build's files."""
    unchanged: set[str]
    gone: list[str]
    updated: list[str]
    added: list[str]

    @classmethod
    def of(cls, old_files: dict[str, dict], shas: dict[str, str]) -> "Plan":
        unchanged = {s for s in shas if s in old_files and old_files[s].get("sha256") == shas[s]}
        return cls(unchanged=unchanged, gone=sorted(set(old_files) - set(shas)),
                   updated=sorted(s for s in shas if s in old_files and s not in unchanged),
                   added=sorted(s for s in shas if s not in old_files))

    def report(self, files: dict[str, dict], **facts) -> BuildReport:
        """The BuildReport of this plan carried out (files: the new manifest's; skipped files have no chunks)."""
        return BuildReport(files=sum(1 for f in files.values() if f["chunks"]),
                           added=sum(1 for f in self.added if files[f]["chunks"]),
                           updated=sum(1 for f in self.updated if files[f]["chunks"]),
                           removed=len(self.gone), unchanged=len(self.unchanged), **facts)


def _publish(index_dir: Path, store: FaissStore, lexical: Bm25Index, manifest: dict) -> Path:
    builds = index_dir / BUILDS_DIR
    name = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    tmp = builds / f".tmp-{name}"
    try:
        builds.mkdir(exist_ok=True)
        for stale in builds.glob(".tmp-*"):  # left by a build that crashed; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir()
        store.save(tmp)
        lexical.save(tmp)
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
        for f in tmp.rglob("*"):
            if f.is_file():
                with f.open("rb") as fh:
                    os.fsync(fh.fileno())
        final = builds / name
        tmp.rename(final)
        _fsync_dir(builds)
        pointer = index_dir / f".{CURRENT_FILE}.tmp"
        pointer.write_text(f"{BUILDS_DIR}/{name}\n", encoding="utf-8")
        with pointer.open("rb") as fh:
            os.fsync(fh.fileno())
        previous = current_folder(index_dir)
        os.replace(pointer, index_dir / CURRENT_FILE)
    except (OSError, RuntimeError) as e:  # RuntimeError: FAISS's own write error
        _unwritable(e, builds, [tmp, builds / name])
    _fsync_dir(index_dir)
    keep = {final, previous}  # the previous build stays for readers that are loading it right now
    for old in builds.iterdir():
        if old not in keep and not old.name.startswith(".tmp-"):
            shutil.rmtree(old, ignore_errors=True)
    return final


def _unwritable(e: Exception, builds: Path, leftovers: list[Path]) -> None:
    """Raise IndexUnwritable for a failed write of a build (the previous build stays live), its files removed."""
    try:
        full = getattr(e, "errno", None) == errno.ENOSPC or "No space" in str(e) or \
            shutil.disk_usage(builds).free < DISK_FULL_BYTES
    except OSError:
        full = False
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
    reason = "no space left on device" if full else (getattr(e, "strerror", None) or str(e).splitlines()[0][:200])
    raise IndexUnwritable(f"cannot write the new build in {builds}: {reason}; the previous build stays live") \
        from None


def current_folder(index_dir: Path) -> Path | None:
    try:
        name = (index_dir / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return index_dir / name


def data_hashes(config: Config) -> dict[str, str]:
    """sha256 of every file the data folder offers for indexing, by source."""
    return {source: file_sha256(path) for source, path in list_files(config.data_dir)}


def _hashes_for(config: Config, live: LoadedIndex | None) -> dict[str, str | None]:
    """The data folder's files by source, with their sha256 when a live build is there to compare with.
    Without one every file is read, and hashed as it is read (None here); on Ray, hashed first all the same."""
    if live is not None or config.engine == "ray":
        return data_hashes(config)
    return dict.fromkeys(source for source, _ in list_files(config.data_dir))


def _changed(built: dict, now: dict[str, str]) -> list[str]:
    return sorted(s for s in set(now) | set(built) if now.get(s) != built.get(s, {}).get("sha256"))


def _loadable_live_build(config: Config) -> LoadedIndex | None:
    """The live build when it loads and matches this run's settings (no model needed); else None. One with
    another BM25 tokenizer counts: a build keeps its vectors and tokenizes every chunk again."""
    if not index_exists(config):
        return None
    try:
        return load_index(config, any_lexical=True)
    except QAError:
        return None  # another model, format or chunking, or unreadable: a full build replaces it


def index_exists(config: Config) -> bool:
    if config.store == "milvus":
        return live_build_id(config) is not None
    return (config.index_dir / CURRENT_FILE).is_file()


def check_manifest(manifest: dict, config: Config, where: str, index_types: tuple[str, ...],
                   any_lexical: bool = False) -> None:
    """Refuse an index whose manifest disagrees with this run's settings, naming the command that rebuilds it.
    any_lexical: accept another BM25 tokenizer (a build, which tokenizes every chunk again, reads it so)."""
    rebuild = rebuild_command(config)
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexMismatch(f"the index in {where} has format version {version}, this program reads "
                            f"version {FORMAT_VERSION}; rebuild it with: {rebuild}")
    files = manifest.get("files")
    if any(key not in manifest for key in ("model", "backend", "index_type", "chunking", "dimension")) or \
            not isinstance(files, dict) or not all(isinstance(f, dict) and isinstance(f.get("sha256"), str)
                                                   and isinstance(f.get("chunks"), int) for f in files.values()):
        raise IndexCorrupt(f"the manifest in {where} is incomplete; rebuild it with: {rebuild}")
    if "encoder" in manifest and not (isinstance(manifest["encoder"], dict) and
                                      isinstance(manifest["encoder"].get("sha256"), str)):
        raise IndexCorrupt(f"the manifest in {where} names its encoder export wrongly; rebuild it with: {rebuild}")
    if manifest.get("model") != config.model:
        raise IndexMismatch(f"the index in {where} was built with model {manifest.get('model')!r}, "
                            f"this run uses {config.model!r}; rebuild it with: {rebuild}")
    if config.backend and manifest.get("backend") != config.backend:
        raise IndexMismatch(f"the index in {where} was built with the {manifest.get('backend')} encoder, "
                            f"this run asks for {config.backend}; rebuild it with: {rebuild}")
    if manifest.get("backend") not in BACKENDS or manifest.get("index_type") not in index_types:
        raise IndexCorrupt(f"the manifest in {where} names no known encoder or index type; rebuild it "
                           f"with: {rebuild}")
    if manifest.get("chunking") != chunking_settings(config):
        raise IndexMismatch(f"the index in {where} was chunked with {manifest.get('chunking')}, this "
                            f"run uses {chunking_settings(config)}; rebuild it with: {rebuild}")
    if manifest.get("lexical") != TOKENIZER and index_types != ("milvus",) and not any_lexical:
        raise IndexMismatch(f"the index in {where} has another lexical index "
                            f"({manifest.get('lexical')!r}, this program reads {TOKENIZER!r}); rebuild it with: {rebuild}")


def load_index(config: Config, any_lexical: bool = False) -> LoadedIndex:
    """The live build, after checking its manifest against this run's settings (any_lexical: see check_manifest)."""
    if config.store == "milvus":
        from .milvus_index import load_milvus

        return load_milvus(config)
    rebuild = rebuild_command(config)
    folder = current_folder(config.index_dir)
    if folder is None:
        raise IndexMissing(f"no index in {config.index_dir}; build it with: {rebuild}")
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
        manifest["format_version"]  # KeyError, TypeError: not a manifest
    except (OSError, ValueError, KeyError, TypeError):
        raise IndexCorrupt(f"the index in {config.index_dir} has no readable manifest; rebuild it with: {rebuild}") from None
    check_manifest(manifest, config, str(config.index_dir), ("flat", "ivf"), any_lexical)
    try:
        store = FaissStore.load(folder, int(manifest["dimension"]))
        lexical = Bm25Index.load(folder)
        expected = int(manifest["chunk_count"])
    except IndexCorrupt as e:
        raise IndexCorrupt(f"{e}; rebuild it with: {rebuild}") from None
    except (KeyError, ValueError, TypeError):
        raise IndexCorrupt(f"the manifest in {config.index_dir} is incomplete; rebuild it with: {rebuild}") from None
    if not len(store) == expected == len(lexical):
        held = f"{len(store)} chunks" + (f" ({len(lexical)} in BM25)" if len(lexical) != len(store) else "")
        raise IndexCorrupt(f"the index in {config.index_dir} holds {held} but its manifest says "
                           f"{expected}; rebuild it with: {rebuild}")
    return LoadedIndex(manifest=manifest, store=store, lexical=lexical, folder=folder)
