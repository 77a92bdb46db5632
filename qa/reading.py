"""Reading the data folder: which files count, how they decode, and what gets skipped (with a warning)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Iterator

from .records import Document

SUFFIXES = (".txt", ".md")
MAX_FILE_BYTES = 50 * 1024 * 1024  # larger files are truncated here, with a warning


def list_files(data_dir: Path) -> list[tuple[str, Path]]:
    """(source, path) of every .txt/.md file under data_dir, recursively, sorted by source.

    Hidden files and folders are left out, and so are symlinks that lead outside the data folder.
    """
    root = data_dir.resolve()
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() not in SUFFIXES or not path.is_file():
            continue
        if not path.resolve().is_relative_to(root):
            continue  # a symlink pointing outside the data folder
        found.append((rel.as_posix(), path))
    return found


def decode(raw: bytes) -> str:
    """UTF-8 with an optional BOM; raises UnicodeDecodeError for anything else."""
    text = raw.decode("utf-8")
    return text[1:] if text.startswith("\ufeff") else text


def read_file(path: Path, source: str, warn: Callable[[str], None]) -> Document | None:
    """One Document, or None (after one warning naming the file) when it is empty or not UTF-8 text."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        warn(f"skipped {source}: cannot be read ({e.strerror})")
        return None
    digest = hashlib.sha256(raw).hexdigest()
    if len(raw) > MAX_FILE_BYTES:
        raw = raw[:MAX_FILE_BYTES]
        while raw and (raw[-1] & 0xC0) == 0x80:  # don't cut a multi-byte character in half
            raw = raw[:-1]
        raw = raw[:-1] if raw and raw[-1] >= 0xC0 else raw
        warn(f"truncated {source}: only its first {MAX_FILE_BYTES // 2**20} MB are indexed")
    if b"\x00" in raw:
        warn(f"skipped {source}: binary content, not text")
        return None
    try:
        text = decode(raw)
    except UnicodeDecodeError as e:
        warn(f"skipped {source}: not valid UTF-8 (byte {e.start})")
        return None
    if not text.strip():
        warn(f"skipped {source}: empty")
        return None
    return Document(source=source, text=text, sha256=digest)


def read_corpus(data_dir: Path, warn: Callable[[str], None]) -> Iterator[Document]:
    """Documents of every readable file under data_dir, in sorted path order."""
    for source, path in list_files(data_dir):
        doc = read_file(path, source, warn)
        if doc is not None:
            yield doc
