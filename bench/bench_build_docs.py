"""Benchmark: a full build of a real documentation folder against sentence-transformers' own encode of the
same chunks, side by side in one run.

    python bench/bench_build_docs.py FOLDER [--repeats 2]

FOLDER: a documentation folder (for example the tldr pages, thousands of one-page Markdown files). The
chunks are what `qa index` makes of it; each is encoded as the build encodes it (title and heading path in
front). Alternates: sentence-transformers `model.encode` (torch, all threads, batch 32), the chosen
encoder's raw encode (Embedder.encode over the same texts), and a full build with the encoder chosen for
this CPU (the default; --backend to ask for one), --repeats times. Prints medians and ratios, the encoder
chosen and why, the chunks whose vectors were reused, and the index folder's own bytes per chunk (the
ONNX export it links to from the shared cache is not counted: it is not a copy).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cpu_flags, temp_dir  # noqa: E402

from qa.chunking import chunk_document, encoder_input, load_tokenizer  # noqa: E402
from qa.config import build_config  # noqa: E402
from qa.embedding import Embedder  # noqa: E402
from qa.indexing import build_index, encoder_dir, new_index_backend  # noqa: E402
from qa.reading import read_corpus  # noqa: E402


def own_bytes(folder: Path) -> tuple[int, int]:
    """(bytes of the files only this folder holds, bytes of hard links to files held elsewhere too)."""
    own = linked = 0
    for path in folder.rglob("*"):
        if path.is_file():
            st = path.stat()
            if st.st_nlink > 1:
                linked += st.st_size
            else:
                own += st.st_size
    return own, linked


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--backend", choices=["torch", "onnx", "onnx-int8"], help="default: chosen for this CPU")
    args = p.parse_args()
    tmp = Path(temp_dir("qa-bench-docs-"))
    config = build_config({}, data_dir=args.folder.resolve(), index_dir=tmp / "index", backend=args.backend)
    choice = None if args.backend else new_index_backend(config)  # timed once per machine where needed
    backend = args.backend or choice.backend
    embedder = Embedder(backend=backend, encoder_dir=encoder_dir(config), shared_dir=config.cache_dir / "encoders")
    embedder.warm_up()
    tokenizer = load_tokenizer(embedder.path)
    t = time.perf_counter()
    docs = list(read_corpus(config.data_dir, lambda m: None))
    texts = [encoder_input(c) for d in docs
             for c in chunk_document(d, tokenizer, config.chunk_tokens, config.overlap_tokens)]
    read_s = time.perf_counter() - t
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(embedder.path), device="cpu")
    model.encode(texts[:64], batch_size=32)
    embedder.encode(texts[:64])

    def timed(run) -> float:
        t = time.perf_counter()
        run()
        return time.perf_counter() - t

    st_s, raw_s, build_s, reports = [], [], [], []
    for _ in range(args.repeats):
        st_s.append(timed(lambda: model.encode(texts, batch_size=32, normalize_embeddings=True)))
        raw_s.append(timed(lambda: embedder.encode(texts)))
        report = build_index(config, embedder, warn=lambda m: None, full=True)
        build_s.append(report.seconds)
        reports.append(report)
    st, raw, build = (statistics.median(x) for x in (st_s, raw_s, build_s))
    own, linked = own_bytes(config.index_dir)
    last = reports[-1]
    print(f"cpu: {cpu_flags()}; {len(docs)} documents, {len(texts)} chunks ({read_s:.1f} s to read and chunk); "
          f"medians of {args.repeats}")
    print(f"encoder: {backend}" + (f" (chosen: {choice.reason})" if choice else " (asked for)"))
    print(f"sentence-transformers encode {st:7.1f} s  {len(texts) / st:6.1f} chunks/s")
    print(f"{backend} raw encode{'':<{max(1, 17 - len(backend))}}{raw:7.1f} s  {len(texts) / raw:6.1f} chunks/s")
    print(f"full build                   {build:7.1f} s  {len(texts) / build:6.1f} chunks/s   "
          f"= {st / build:.2f}x sentence-transformers, {raw / build:.2f}x raw encode")
    print(f"reused vectors: {last.chunks_reused} of {last.chunks_added} chunks")
    print(f"index folder: {own / 2**20:.1f} MB of its own ({own / max(1, last.chunks) / 1024:.1f} kB per chunk); "
          f"{linked / 2**20:.1f} MB linked from the shared export")
    os.sync()


if __name__ == "__main__":
    main()
