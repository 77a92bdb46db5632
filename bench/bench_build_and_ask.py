"""Benchmark: index build throughput against raw model.encode on the same chunks, and in-process ask latency.

    python bench/bench_build_and_ask.py [--docs 300] [--repeats 9] [--backend onnx-int8]

Build corpus: the first --docs SQuAD 2.0 dev paragraphs (../shared/eval/squad_v2_dev), one .txt file each.
Raw encode and build alternate (raw, build, raw, ..., build, raw: --repeats builds); medians are reported, their
ratio, and the median of the ratios of each build to the mean of the raw encodes just before and after it (steadier
on a shared machine whose speed drifts: one raw encode varies by up to 25% here). Raw encode is the
backend's own: sentence-transformers' model.encode for torch, the ONNX session over the tokenized chunks
(Embedder.encode: tokenize, run, mean-pool) for onnx and onnx-int8.
Ask latency: the default corpus, one torch/FAISS thread, question-vector cache cleared before every question.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_EVAL, cpu_flags, jsonl_texts, percentile, squad_files, temp_dir  # noqa: E402

from qa.assistant import Assistant  # noqa: E402
from qa.chunking import chunk_document, encoder_input, load_tokenizer  # noqa: E402
from qa.config import build_config  # noqa: E402
from qa.embedding import Embedder  # noqa: E402
from qa.indexing import build_index, encoder_dir  # noqa: E402
from qa.reading import read_corpus  # noqa: E402

SQUAD = SHARED_EVAL / "squad_v2_dev" / "corpus.jsonl"
QUESTIONS = ["Who directs the Secretariat?", "In which city is the Secretariat based?",
             "What does the Conflict Prevention Centre do?", "When was the Conflict Prevention Centre created?",
             "What is the OSCE doing about human trafficking?", "Where is the Documentation Centre?",
             "How does the OSCE work with police?", "When did the OSCE commit to border security?",
             "What is the boiling point of mercury?", "What guides the OSCE's counter-terrorism work?",
             "Who set up the Special Representative for Combating Trafficking?", "What is ICT?"]




def bench_build(docs: int, repeats: int, backend: str) -> dict:
    tmp = Path(temp_dir("qa-bench-"))
    data = squad_files(tmp, docs)
    config = build_config({}, data_dir=data, index_dir=tmp / "index", backend=backend)
    embedder = Embedder(backend=backend, encoder_dir=encoder_dir(config), shared_dir=config.cache_dir / "encoders")
    embedder.warm_up()
    if backend == "torch":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(embedder.path), device="cpu")
        raw_encode = lambda texts: model.encode(texts, batch_size=32, normalize_embeddings=True)  # noqa: E731
    else:
        raw_encode = embedder.encode
    tokenizer = load_tokenizer(embedder.path)
    # what the encoder reads: each chunk's title and heading path, then its text
    texts = [encoder_input(c) for d in read_corpus(data, print)
             for c in chunk_document(d, tokenizer, config.chunk_tokens, config.overlap_tokens)]
    embedder.encode(texts[:64])  # warm the kernels
    def timed_raw() -> float:
        t = time.perf_counter()
        raw_encode(texts)
        return time.perf_counter() - t

    build_s, raw_s = [], [timed_raw()]
    for _ in range(repeats):  # raw, build, raw, build, ..., raw
        report = build_index(config, embedder, warn=print, full=True)
        build_s.append(report.seconds)
        assert report.chunks == len(texts)
        raw_s.append(timed_raw())
    raw = len(texts) / statistics.median(raw_s)
    build = len(texts) / statistics.median(build_s)
    # each build against the mean of the raw encodes just before and after it (cancels a drift in speed)
    pairs = sorted((raw_s[i] + raw_s[i + 1]) / 2 / b for i, b in enumerate(build_s))
    return {"docs": docs, "chunks": len(texts), "raw_encode_chunks_per_s": round(raw, 1),
            "build_chunks_per_s": round(build, 1), "build_over_raw": round(build / raw, 3),
            "paired_ratio_median": round(statistics.median(pairs), 3),
            "paired_ratios": [round(x, 3) for x in pairs]}, config, embedder


def bench_search(config, embedder, rounds: int) -> dict:
    """Search p50 on the build corpus, hybrid against dense only, over SQuAD questions on those paragraphs."""
    from qa.retrieval import dense_search, hybrid_search

    assistant = Assistant(config)
    assistant.embedder = embedder
    assistant.set_threads(1)
    index = assistant.index
    questions = jsonl_texts(SQUAD.parent / "queries.jsonl", 200)
    times = {"dense": [], "hybrid": []}
    for _ in range(rounds):
        for q in questions:
            for name, run in (("dense", lambda: dense_search(index.store, embedder, q, 5)),
                              ("hybrid", lambda: hybrid_search(index.store, index.lexical, embedder, q, 5))):
                embedder._cache.clear()
                t = time.perf_counter()
                run()
                times[name].append((time.perf_counter() - t) * 1000)
    return {"searches": len(times["dense"]), **{f"{k}_ms_p50": round(statistics.median(v), 2) for k, v in times.items()}}


def bench_ask(rounds: int, backend: str) -> dict:
    tmp = Path(temp_dir("qa-bench-ask-"))
    assistant = Assistant(build_config({}, index_dir=tmp / "index", backend=backend))
    assistant.warm_up(build_if_missing=True, warn=print)
    assistant.set_threads(1)
    cold, warm = [], []
    for _ in range(rounds):
        for q in QUESTIONS:
            assistant.embedder._cache.clear()
            t = time.perf_counter()
            assistant.ask(q)
            cold.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            assistant.ask(q)
            warm.append((time.perf_counter() - t) * 1000)
    return {"questions": len(cold), "ask_ms_p50": round(statistics.median(cold), 1),
            "ask_ms_p95": round(percentile(cold, 0.95), 1), "ask_repeat_ms_p50": round(statistics.median(warm), 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    if not SQUAD.is_file():
        sys.exit(f"error: the benchmark corpus is missing: {SQUAD} (../shared/eval beside the checkout)")
    p.add_argument("--docs", type=int, default=300)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--backend", default="onnx-int8", choices=["torch", "onnx", "onnx-int8"])
    args = p.parse_args()
    print(f"cpu: {cpu_flags()}")
    build, config, embedder = bench_build(args.docs, args.repeats, args.backend)
    print(f"build ({args.backend}): {build['chunks']} chunks from {build['docs']} files; raw encode {build['raw_encode_chunks_per_s']} "
          f"chunks/s, build {build['build_chunks_per_s']} chunks/s, ratio {build['build_over_raw']}x (medians of "
          f"{args.repeats} builds and {args.repeats + 1} raw encodes); median of the {args.repeats} paired ratios {build['paired_ratio_median']}x "
          f"(each build against the raw encodes just before and after it: {build['paired_ratios']})")
    search = bench_search(config, embedder, 1)
    print(f"search (that corpus, 1 thread, question vector not cached, {search['searches']} questions): dense p50 "
          f"{search['dense_ms_p50']} ms, hybrid p50 {search['hybrid_ms_p50']} ms")
    ask = bench_ask(args.rounds, args.backend)
    print(f"ask (default corpus, 1 thread, {ask['questions']} asks): p50 {ask['ask_ms_p50']} ms, "
          f"p95 {ask['ask_ms_p95']} ms; repeated question p50 {ask['ask_repeat_ms_p50']} ms")
    print(json.dumps({"build": build, "search": search, "ask": ask}))


if __name__ == "__main__":
    main()
