"""Benchmark: encoder backends on the same chunks. Throughput of torch (sentence-transformers'
model.encode, the reference), onnx and onnx-int8 (this app's Embedder), alternating --repeats times,
medians and ratios to torch; their agreement with torch (cosine); one-question encoding p50 (one thread).

    python bench/bench_encoders.py [--texts 320] [--repeats 5] [--onnx-batches 1,2,4,8,16]

--onnx-batches also measures the float32 export run with that many texts per run (qa.embedding.ONNX_BATCH
is the one used), with the largest difference of its vectors from one-text runs.

Texts: SQuAD 2.0 dev paragraphs (about 120 words each). Retrieval quality per backend is measured by
`python -m qa eval ../shared/eval/scifact --backend B` (see README).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_EVAL, cpu_flags, jsonl_texts, require, temp_dir  # noqa: E402

from qa.config import ROOT  # noqa: E402
from qa.embedding import Embedder, set_threads  # noqa: E402

SQUAD = SHARED_EVAL / "squad_v2_dev"



def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--texts", type=int, default=320)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--onnx-batches", default="", help="comma-separated texts per float32 ONNX run to compare")
    args = p.parse_args()
    print(f"cpu: {cpu_flags()}")
    require(SQUAD)
    texts = jsonl_texts(SQUAD / "corpus.jsonl", args.texts)
    questions = jsonl_texts(SQUAD / "queries.jsonl", 200)
    from sentence_transformers import SentenceTransformer

    folder = Path(temp_dir("qa-encoders-"))
    encoders = {"torch": None}
    for backend in ("onnx", "onnx-int8"):
        encoders[backend] = Embedder(backend=backend, encoder_dir=folder, shared_dir=ROOT / ".cache" / "encoders")
        encoders[backend].warm_up()
    model = SentenceTransformer(str(encoders["onnx"].path), device="cpu")
    run = {"torch": lambda t: model.encode(t, batch_size=32, normalize_embeddings=True),
           "onnx": lambda t: encoders["onnx"].encode(t), "onnx-int8": lambda t: encoders["onnx-int8"].encode(t)}
    for f in run.values():
        f(texts[:32])
    seconds = {name: [] for name in run}
    for _ in range(args.repeats):
        for name, f in run.items():
            t = time.perf_counter()
            f(texts)
            seconds[name].append(time.perf_counter() - t)
    reference = run["torch"](texts)
    torch_rate = len(texts) / statistics.median(seconds["torch"])
    print(f"{len(texts)} texts, median of {args.repeats} alternating runs, 2 cores:")
    for name, f in run.items():
        rate = len(texts) / statistics.median(seconds[name])
        cosine = (f(texts) * reference).sum(axis=1)
        print(f"  {name:<10} {rate:6.1f} texts/s  {rate / torch_rate:4.2f}x torch   cosine to torch: "
              f"min {cosine.min():.4f}, mean {cosine.mean():.4f}")
    if args.onnx_batches:
        onnx_batches(texts, folder, [int(b) for b in args.onnx_batches.split(",")], args.repeats)
    set_threads(1)
    torch_query = Embedder(backend="torch")
    torch_query.set_threads(1)
    for name, e in (("torch", torch_query), ("onnx", encoders["onnx"]), ("onnx-int8", encoders["onnx-int8"])):
        e.set_threads(1)
        e.encode(questions[:10])
        times = []
        for q in questions:
            t = time.perf_counter()
            e.encode([q])
            times.append((time.perf_counter() - t) * 1000)
        print(f"  one question, one thread, {name:<10} p50 {statistics.median(times):.2f} ms")


def onnx_batches(texts: list[str], folder: Path, sizes: list[int], repeats: int) -> None:
    """float32 ONNX throughput per number of texts per run, runs alternating, and agreement with one-text runs."""
    encoders = {b: Embedder(backend="onnx", encoder_dir=folder, shared_dir=ROOT / ".cache" / "encoders",
                            onnx_batch=b) for b in sizes}
    for e in encoders.values():
        e.encode(texts[:16])
    seconds = {b: [] for b in sizes}
    for _ in range(repeats):
        for b, e in encoders.items():
            t = time.perf_counter()
            e.encode(texts)
            seconds[b].append(time.perf_counter() - t)
    one = Embedder(backend="onnx", encoder_dir=folder, shared_dir=ROOT / ".cache" / "encoders").encode(texts)
    base = len(texts) / statistics.median(seconds[sizes[0]])
    print(f"  float32 ONNX, texts per run (median of {repeats} alternating runs):")
    for b, e in encoders.items():
        rate = len(texts) / statistics.median(seconds[b])
        print(f"    {b:>3} per run {rate:6.1f} texts/s  {rate / base:4.2f}x {sizes[0]} per run   "
              f"largest difference from one-text runs {abs(e.encode(texts) - one).max():.1e}")


if __name__ == "__main__":
    main()
