"""Reading the data folder: which files count, how they decode, and what gets skipped (with a warning).

Text files (.txt, .md) are one document each. A .jsonl file holds one document per line,
{"id", "title", "text"}: its source is "FILE#ID" and its text is the title, a blank line and the text
(just the text when there is no title), so offsets point into that extracted text.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .records import Document

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".jsonl")
EXTRACTED_SUFFIXES = (".html", ".htm", ".pdf", ".docx")  # their text comes out of qa/extracting.py
SUFFIXES = TEXT_SUFFIXES + EXTRACTED_SUFFIXES
MAX_FILE_BYTES = 50 * 1024 * 1024  # larger files are truncated here, with a warning


IGNORE_FILE = ".qaignore"  # in the data folder: what not to index (ignore_patterns)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class Unindexed:
    """What the data folder holds besides the files it indexes."""
    images: int = 0
    other: int = 0  # files of a type that is not read (.css, .json, .py, ...)
    hidden: tuple[str, ...] = ()  # hidden files and folders (".git", ".env"): not entered, not read
    ignored: tuple[str, ...] = ()  # files and folders a pattern of the data folder's .qaignore names

    def summary(self) -> str:
        """"248 images and 12 other files not indexed; hidden, left out: .git, .env" ("" when nothing)."""
        kinds = [f"{self.images} image{'s' if self.images != 1 else ''}"] if self.images else []
        kinds += [f"{self.other} other file{'s' if self.other != 1 else ''}"] if self.other else []
        parts = [" and ".join(kinds) + " not indexed"] if kinds else []
        for label, names in (("hidden", self.hidden), (IGNORE_FILE, self.ignored)):
            if names:
                listed = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
                parts.append(f"{label}, left out: {listed}")
        return "; ".join(parts)


def list_files(data_dir: Path) -> list[tuple[str, Path]]:
    """(source, path) of every file of an indexed type under data_dir, recursively, sorted by path
    (data_dir may also be one such file).

    Hidden files and folders are left out, and so are symlinks that lead outside the data folder. Linked
    folders are not entered. So are the files and folders that data_dir/.qaignore names (ignore_patterns).
    """
    return _listing(data_dir)[0]


def unindexed(data_dir: Path) -> Unindexed:
    """The files and folders under data_dir that list_files leaves out, by kind."""
    return _listing(data_dir)[1]


def _listing(data_dir: Path) -> tuple[list[tuple[str, Path]], Unindexed]:
    root = data_dir.resolve()
    if root.is_file():
        return ([(root.name, root)] if root.suffix.lower() in SUFFIXES else []), Unindexed()
    found: list[tuple[tuple[str, ...], str]] = []
    counts = {"images": 0, "other": 0}
    hidden: list[str] = []
    ignored: list[str] = []
    patterns = ignore_patterns(root / IGNORE_FILE)

    def walk(folder: str, parts: tuple[str, ...]) -> None:
        try:
            with os.scandir(folder) as entries:
                entries = list(entries)
        except OSError:  # unreadable or gone: left out, as by Path.rglob
            return
        for entry in entries:
            if entry.name.startswith("."):
                if parts or entry.name != IGNORE_FILE:  # the data folder's .qaignore is read, not left out
                    hidden.append("/".join(parts + (entry.name,)))
                continue
            folder_entry = entry.is_dir(follow_symlinks=False)
            if patterns and ignored_by(patterns, parts + (entry.name,), folder_entry):
                ignored.append("/".join(parts + (entry.name,)) + "/" * folder_entry)
                continue
            if folder_entry:
                walk(entry.path, parts + (entry.name,))
                continue
            suffix = os.path.splitext(entry.name)[1].lower()
            if suffix in SUFFIXES:
                if _regular_file_inside(entry, root):
                    found.append((parts + (entry.name,), entry.path))
            elif entry.is_file(follow_symlinks=False):
                counts["images" if suffix in IMAGE_SUFFIXES else "other"] += 1

    walk(str(root), ())
    found.sort()  # by path parts, as sorted(root.rglob("*")) orders them
    return ([("/".join(parts), Path(path)) for parts, path in found],
            Unindexed(images=counts["images"], other=counts["other"], hidden=tuple(sorted(hidden)),
                      ignored=tuple(sorted(ignored))))


def ignore_patterns(file: Path) -> tuple[re.Pattern, ...]:
    """The patterns of a .qaignore file (none without one), as in .gitignore but without "!": one per line, "#"
    starts a comment line; a pattern without "/" names files or folders at any depth ("*.html", "drafts"), one
    with "/" a path from the data folder ("docs/overrides/", "/notes/*.txt"); a trailing "/" only folders; "*"
    and "?" stay within one name, "**" spans folders, "[...]" is a set of characters."""
    try:
        lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ()
    return tuple(_ignore_regex(line.strip()) for line in lines if line.strip() and not line.strip().startswith("#"))


def _ignore_regex(pattern: str) -> re.Pattern:
    folders_only = pattern.endswith("/")
    pattern = pattern.rstrip("/")
    anchored = "/" in pattern
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2:]:
            end = pattern.index("]", i + 2)
            inside = pattern[i + 1:end].replace("\\", "\\\\").replace("[", "\\[")
            out.append("(?!/)[" + ("^" + inside[1:] if inside.startswith("!") else inside) + "]")  # never a "/"
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    lead, tail = ("" if anchored else "(?:.*/)?"), ("/" if folders_only else "/?")
    try:
        return re.compile(lead + "".join(out).lstrip("/") + tail)
    except re.error:  # a set that is no set ("[z-a]"): the pattern names what it spells
        return re.compile(lead + re.escape(pattern.lstrip("/")) + tail)


def ignored_by(patterns: tuple[re.Pattern, ...], parts: tuple[str, ...], folder: bool) -> bool:
    """Whether a pattern of ignore_patterns names the file or folder at the path `parts` under the data folder."""
    path = "/".join(parts) + ("/" if folder else "")
    return any(p.fullmatch(path) for p in patterns)


def _regular_file_inside(entry: os.DirEntry, root: Path) -> bool:
    """A file, or a symlink to a file inside root; not a link loop or a link into a folder we may not read."""
    try:
        return entry.is_file() and (not entry.is_symlink() or Path(entry.path).resolve().is_relative_to(root))
    except OSError:
        return False


def file_sha256(path: Path) -> str:
    """sha256 of the bytes read_file hashes (up to MAX_FILE_BYTES + 1), or "" when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            digest.update(f.read(MAX_FILE_BYTES + 1))
    except OSError:
        return ""
    return digest.hexdigest()


def decode(raw: bytes) -> str:
    """UTF-8 with an optional BOM; raises UnicodeDecodeError for anything else."""
    text = raw.decode("utf-8")
    return text[1:] if text.startswith("\ufeff") else text


def read_file(path: Path, source: str, warn: Callable[[str], None],
              hashes: dict[str, str] | None = None) -> Document | None:
    """One Document, or None (after one warning naming the file) when it is empty or not UTF-8 text.
    hashes: gets the sha256 of the bytes read ("" when none could be), for a skipped file too."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        if hashes is not None:
            hashes[source] = ""
        warn(f"skipped {source}: cannot be read ({e.strerror})")
        return None
    digest = hashlib.sha256(raw).hexdigest()
    if hashes is not None:
        hashes[source] = digest
    suffix = path.suffix.lower()
    if suffix in (".pdf", ".docx"):
        return _extracted(raw, suffix, source, digest, warn)
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
    blocks = None
    if suffix in (".html", ".htm"):
        from .extracting import html_structure

        text, blocks = html_structure(text)
    if not text.strip():
        warn(f"skipped {source}: empty" + (" (no visible text)" if suffix in (".html", ".htm") else ""))
        return None
    return Document(source=source, text=text, sha256=digest, blocks=blocks)


def _extracted(raw: bytes, suffix: str, source: str, digest: str, warn: Callable[[str], None]) -> Document | None:
    from .extracting import ExtractionError, docx_text, pdf_text

    if len(raw) > MAX_FILE_BYTES:
        warn(f"skipped {source}: over {MAX_FILE_BYTES // 2**20} MB")
        return None
    try:
        text = pdf_text(raw) if suffix == ".pdf" else docx_text(raw)
    except ExtractionError as e:
        warn(f"skipped {source}: {e}")
        return None
    if not text.replace("\f", "").strip():
        warn(f"skipped {source}: no text in it" + (" (a scanned PDF?)" if suffix == ".pdf" else ""))
        return None
    return Document(source=source, text=text, sha256=digest)


def jsonl_documents(doc: Document, warn: Callable[[str], None]) -> Iterator[Document]:
    """The documents of a .jsonl file read as one Document: one per line with an id and a text."""
    seen = set()
    for number, line in enumerate(doc.text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            doc_id, title, text = str(row["id"]).strip(), str(row.get("title") or "").strip(), row["text"]
            if not isinstance(text, str) or not doc_id:
                raise TypeError
        except (ValueError, KeyError, TypeError, AttributeError):
            warn(f"skipped {doc.source} line {number}: not a JSON object with an id and a text")
            continue
        if doc_id in seen:
            warn(f"skipped {doc.source} line {number}: the id {doc_id!r} came before")
            continue
        seen.add(doc_id)
        body = f"{title}\n\n{text}" if title else text
        if body.strip():
            yield Document(source=f"{doc.source}#{doc_id}", text=body,
                           sha256=hashlib.sha256(line.encode("utf-8")).hexdigest(), file_sha256=doc.sha256)


def read_corpus(data_dir: Path, warn: Callable[[str], None], only: set[str] | None = None,
                hashes: dict[str, str] | None = None) -> Iterator[Document]:
    """Documents of every readable file under data_dir (or of the files named in only), in sorted path order.
    hashes: gets each file's sha256 by source, as read_file."""
    for source, path in list_files(data_dir):
        if only is not None and source not in only:
            continue
        doc = read_file(path, source, warn, hashes)
        if doc is None:
            continue
        if source.lower().endswith(".jsonl"):
            found = 0
            for found, part in enumerate(jsonl_documents(doc, warn), start=1):
                yield part
            if not found:
                warn(f"skipped {source}: no line holds a document")
        else:
            yield doc
