"""Benchmark: the FAISS index at scale. Exact search against the inverted-list index the store switches to
beyond its flat limit, at --n vectors (default 1M): search p50 (one thread), recall@10 against exact
search, build time and bytes per vector.

    python bench/bench_scale.py [--n 1000000] [--queries 200]

Realistic vectors: real embeddings (onnx-int8, the default encoder) of the sentences of SQuAD 2.0 dev
paragraphs serve as topics; around each, 10 sub-topics (cosine 0.7-0.9 to the topic), and around those
the vectors (cosine 0.5-0.9 to their sub-topic), each a centre plus Gaussian noise of the size that gives
that cosine, normalized. Queries are drawn around sub-topics more loosely (cosine 0.4-0.8), as questions
sit farther from passages than passages from each other. The median cosine of a query to its 10th
neighbour is printed, to compare with real data.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_EVAL, cpu_flags, temp_dir  # noqa: E402

from qa.chunking import sentence_spans  # noqa: E402
from qa.config import ROOT  # noqa: E402
from qa.embedding import Embedder  # noqa: E402
from qa.store import NPROBE, ivf_index  # noqa: E402

SQUAD = SHARED_EVAL / "squad_v2_dev" / "corpus.jsonl"



def centres(count: int) -> np.ndarray:
    texts = []
    with SQUAD.open(encoding="utf-8") as f:
        for line in f:
            text = json.loads(line)["text"]
            texts += [text[a:b] for a, b in sentence_spans(text) if b - a > 40]
            if len(texts) >= count:
                break
    embedder = Embedder(backend="onnx-int8", encoder_dir=Path(temp_dir("qa-enc-")),
                        shared_dir=ROOT / ".cache" / "encoders")
    return embedder.encode(texts[:count])


def generate(base: np.ndarray, n: int, rng: np.random.Generator, low: float = 0.5, high: float = 0.9) -> np.ndarray:
    """n unit vectors around the rows of base, at a cosine drawn from [low, high] to their centre."""
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for a in range(0, n, 100_000):
        m = min(100_000, n - a)
        target = rng.uniform(low, high, size=(m, 1)).astype(np.float32)  # cosine to the centre
        sigma = np.sqrt((1 / target**2 - 1) / base.shape[1])
        rows = base[rng.integers(0, len(base), m)] + rng.standard_normal((m, base.shape[1]), dtype=np.float32) * sigma
        out[a:a + m] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def timed_search(index, queries: np.ndarray, k: int = 10) -> tuple[float, np.ndarray]:
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        _, ids = index.search(q[None, :], k)
        times.append((time.perf_counter() - t) * 1000)
        found.append(ids[0])
    return statistics.median(times), np.array(found)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--centres", type=int, default=3000)
    args = p.parse_args()
    print(f"cpu: {cpu_flags()}")
    import faiss

    if not SQUAD.is_file():
        sys.exit(f"error: the benchmark corpus is missing: {SQUAD} (../shared/eval beside the checkout)")
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    topics = centres(args.centres)
    base = generate(topics, 10 * len(topics), rng, 0.7, 0.9)
    vectors = generate(base, args.n, rng)
    queries = generate(base, args.queries, rng, 0.4, 0.8)
    print(f"{args.n:,} vectors around {len(base):,} sub-topics of {len(topics):,} real sentence embeddings, "
          f"generated in {time.perf_counter() - t:.0f} s", flush=True)
    ids = np.arange(args.n, dtype=np.int64)

    faiss.omp_set_num_threads(2)
    before = rss_bytes()
    t = time.perf_counter()
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    flat.add_with_ids(vectors, ids)
    flat_build = time.perf_counter() - t
    flat_memory = (rss_bytes() - before) / args.n
    before = rss_bytes()
    t = time.perf_counter()
    ivf = ivf_index(vectors, ids)
    ivf_build = time.perf_counter() - t
    ivf_memory = (rss_bytes() - before) / args.n
    faiss.omp_set_num_threads(1)  # as when serving

    flat_ms, truth = timed_search(flat, queries)
    scores, _ = flat.search(queries, 10)
    print(f"median cosine of a query to its 1st / 10th neighbour: {np.median(scores[:, 0]):.2f} / "
          f"{np.median(scores[:, 9]):.2f}")
    flat_bytes = len(faiss.serialize_index(flat)) / args.n
    ivf_bytes = len(faiss.serialize_index(ivf)) / args.n
    print(f"flat (exact): built in {flat_build:.1f} s, search p50 {flat_ms:.2f} ms; bytes per vector: "
          f"{flat_bytes:.0f} on disk, {flat_memory:.0f} in memory")
    print(f"ivf ({ivf.nlist} lists): trained and filled in {ivf_build:.0f} s; bytes per vector: {ivf_bytes:.0f} on "
          f"disk, {ivf_memory:.0f} in memory (with its id table)")
    for nprobe in sorted({8, 16, 32, NPROBE, 64, 128}):
        ivf.nprobe = nprobe
        timed_search(ivf, queries[:20])  # warm
        ms, found = timed_search(ivf, queries)
        chosen = "  <- the store's NPROBE" if nprobe == NPROBE else ""
        print(f"  nprobe {nprobe:>3}: search p50 {ms:.2f} ms ({flat_ms / ms:.0f}x faster than exact), "
              f"recall@10 {recall(found, truth):.3f}{chosen}", flush=True)


if __name__ == "__main__":
    main()
