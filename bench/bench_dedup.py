"""How much of a documentation folder a build embeds once instead of several times (qa/dedup.py).

Reads and chunks each folder exactly as a build does (no encoding: the count needs only the chunks) and
prints, per folder, its files, chunks, distinct encoder inputs (text with title and heading path, with its
answer-unit spans: what a chunk's vectors depend on) and the share of chunks a build reuses, then the
inputs repeated most. "same text": chunks whose text alone (without title and heading path) repeats
another's, for comparison: those are embedded again when their context differs. "edit kept": for the
EDITED largest parsed-from-text files of the folder, one paragraph inserted at the paragraph break nearest
the middle; the share of the edited file's chunks an incremental build takes from the live build.

    .venv/bin/python bench/bench_dedup.py [FOLDER ...]    (default: every folder in /work/docs-corpora, and data/)
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from common import ROOT

from qa.chunking import chunk_with_tokens, encoder_input, load_tokenizer
from qa.config import Config
from qa.dedup import chunk_key
from qa.embedding import resolve_model_path
from qa.reading import list_files, read_corpus

CORPORA = Path("/work/docs-corpora")
TOP = 3  # most repeated inputs shown per folder
EDITED = 20  # files edited per folder for "edit kept"
EDIT = "An edited paragraph, inserted here to see which chunks of the file change.\n\n"


def edited(doc):
    """The document with EDIT inserted at the paragraph break nearest its middle (None: it has none)."""
    middle = len(doc.text) // 2
    breaks = [i for i in (doc.text.rfind("\n\n", 0, middle), doc.text.find("\n\n", middle)) if i > 0]
    if not breaks:
        return None
    at = min(breaks, key=lambda i: abs(i - middle)) + 2
    return replace(doc, text=doc.text[:at] + EDIT + doc.text[at:])


def count(folder: Path, tokenizer, config: Config) -> dict:
    t0 = time.perf_counter()
    keys: Counter = Counter()
    texts: set[str] = set()
    first: dict[bytes, str] = {}
    chunks = 0
    files = sum(1 for _ in list_files(folder))
    largest: list[tuple[int, object, set]] = []  # (chunks, document, its keys) of the documents parsed from text

    def chunked(doc):
        return [c for c, _ in chunk_with_tokens(doc, tokenizer, config.chunk_tokens, config.overlap_tokens)]

    for doc in read_corpus(folder, lambda message: None):
        own = set()
        for chunk in chunked(doc):
            key = chunk_key(chunk)
            keys[key] += 1
            own.add(key)
            texts.add(chunk.text)
            first.setdefault(key, encoder_input(chunk))
            chunks += 1
        if doc.blocks is None:
            largest = sorted(largest + [(len(own), doc.source, doc, own)], key=lambda r: r[:2], reverse=True)[:EDITED]
    kept = new = 0
    for _, _, doc, own in largest:
        if (changed := edited(doc)) is not None:
            after = [chunk_key(c) for c in chunked(changed)]
            kept += sum(k in own for k in after)
            new += len(after)
    top = [(n, first[k]) for k, n in keys.most_common(TOP) if n > 1]
    return {"files": files, "chunks": chunks, "distinct": len(keys), "texts": len(texts), "kept": kept, "edited": new, "seconds": time.perf_counter() - t0, "top": top}


def main(argv: list[str]) -> int:
    folders = [Path(a).resolve() for a in argv] or sorted(p for p in CORPORA.iterdir() if p.is_dir()) + [ROOT / "data"]
    config = Config()
    tokenizer = load_tokenizer(resolve_model_path(config.model))
    print(f"{'folder':<28} {'files':>6} {'chunks':>7} {'distinct':>8} {'reused':>7} {'share':>6} {'same text':>9} {'edit kept':>9}")
    total = Counter()
    for folder in folders:
        r = count(folder, tokenizer, config)
        reused = r["chunks"] - r["distinct"]
        total.update(chunks=r["chunks"], distinct=r["distinct"], texts=r["texts"])
        print(f"{str(folder)[-28:]:<28} {r['files']:>6} {r['chunks']:>7} {r['distinct']:>8} {reused:>7} "
              f"{reused / max(1, r['chunks']):>6.1%} {1 - r['texts'] / max(1, r['chunks']):>9.1%} "
              f"{r['kept'] / max(1, r['edited']):>9.1%}   "
              f"({r['seconds']:.1f} s to read and chunk)")
        for n, text in r["top"]:
            print(f"    x{n:<4} {text[:100]!r}")
    reused = total["chunks"] - total["distinct"]
    print(f"{'all':<28} {'':>6} {total['chunks']:>7} {total['distinct']:>8} {reused:>7} "
          f"{reused / max(1, total['chunks']):>6.1%} {1 - total['texts'] / max(1, total['chunks']):>9.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
