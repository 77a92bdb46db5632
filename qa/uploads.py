"""Documents added over the web: safe file names, and storing files under the data
folder (data/uploads/) so that the next incremental build picks them up."""
from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

from .errors import IndexBusy, QAError
from .reading import SUFFIXES

log = logging.getLogger("qa.uploads")
UPLOAD_DIR = "uploads"
_BUILDING = threading.Lock()  # one upload build at a time in this process (the index lock guards other processes)
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_UPLOAD_FILES = 100
_SAFE = re.compile(r"[^A-Za-z0-9._ -]")


class UploadRefused(QAError):
    """A file cannot be stored: a bad name, a type that is not indexed, too large, too many."""


class UploadTooLarge(UploadRefused):
    """A file is larger than MAX_UPLOAD_BYTES (the HTTP API answers 413 rather than 400)."""


def safe_name(name: str) -> str:
    """The name a file is stored under, or UploadRefused: no folders, no hidden files, a known suffix."""
    if not name or "\x00" in name or "/" in name or "\\" in name or name in (".", ".."):
        raise UploadRefused(f"refused {name!r}: a file name may not contain folders or NUL")
    cleaned = _SAFE.sub("_", name).strip(" ")[:120]
    if cleaned.startswith("."):
        raise UploadRefused(f"refused {name!r}: hidden files are not indexed")
    if not cleaned.lower().endswith(SUFFIXES):
        raise UploadRefused(f"refused {name!r}: only {', '.join(SUFFIXES)} files are indexed")
    return cleaned


def check_batch(files: list[tuple[str, int]]) -> list[str]:
    """The stored names of a batch of (name, size), or UploadRefused for the whole batch."""
    if not files:
        raise UploadRefused("no files were sent")
    if len(files) > MAX_UPLOAD_FILES:
        raise UploadRefused(f"too many files: {len(files)} (at most {MAX_UPLOAD_FILES} at a time)")
    names = []
    for name, size in files:
        stored = safe_name(name)
        if size > MAX_UPLOAD_BYTES:
            raise UploadTooLarge(f"refused {stored}: larger than {MAX_UPLOAD_BYTES // 2**20} MB")
        names.append(stored)
    return names


def store(data_dir: Path, name: str, content: bytes) -> Path:
    """Write one checked file into data_dir/uploads/ atomically (an existing file of that name is replaced)."""
    folder = (data_dir / UPLOAD_DIR).resolve()
    target = (folder / name).resolve()
    if target.parent != folder:
        raise UploadRefused(f"refused {name!r}: outside the upload folder")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.part"
    tmp.write_bytes(content)
    os.replace(tmp, target)
    return target


def add_documents(assistant, files: list[tuple[str, bytes]]) -> dict:
    """Check a batch, store it under the data folder, then index incrementally; returns what was done."""
    names = check_batch([(name, len(content)) for name, content in files])
    if not _BUILDING.acquire(blocking=False):
        raise IndexBusy("another upload is being indexed; retry in a moment")
    try:
        for name, (_, content) in zip(names, files):
            store(assistant.config.data_dir, name, content)
        warnings: list[str] = []
        report = assistant.build(warnings.append, progress=True)  # a tqdm bar: the web panel shows it
    finally:
        _BUILDING.release()
    for w in warnings:
        log.warning("%s", w)
    return {"stored": [f"{UPLOAD_DIR}/{n}" for n in names], "files_added": report.added,
            "files_updated": report.updated, "chunks": report.chunks, "seconds": round(report.seconds, 1),
            "warnings": warnings}
