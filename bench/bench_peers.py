"""Benchmark: this app against LangChain, side by side in one run, on the same data, model and machine.

    python bench/bench_peers.py [--queries 200]

Data: the SQuAD 2.0 dev paragraphs (../shared/eval/squad_v2_dev/corpus.jsonl, 1,204 paragraphs).
LangChain (RecursiveCharacterTextSplitter + HuggingFaceEmbeddings + FAISS.from_documents) runs in
bench/.venv-peers, made on first use from bench/requirements-peers.txt (its huggingface_hub differs from
ours). Figures: build throughput against each one's raw encode; top-5 search p50 with one thread and no
cached question vectors; a fresh process to its first answered query (median of 3) and its peak RSS.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_EVAL, cpu_flags, jsonl_texts, temp_dir  # noqa: E402

from qa.assistant import Assistant  # noqa: E402
from qa.chunking import chunk_document, load_tokenizer  # noqa: E402
from qa.config import ROOT, build_config  # noqa: E402
from qa.reading import read_corpus  # noqa: E402
from qa.retrieval import hybrid_search  # noqa: E402

SQUAD = SHARED_EVAL / "squad_v2_dev"
PEERS = ROOT / "bench" / ".venv-peers"
PEERS_PY = PEERS / "bin" / "python"



def peers_venv() -> Path:
    if not PEERS_PY.is_file():
        print("making bench/.venv-peers for LangChain (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
        subprocess.run([str(PEERS_PY), "-m", "pip", "install", "--quiet", "-r",
                        str(ROOT / "bench" / "requirements-peers.txt")], check=True)
    return PEERS_PY


def timed_child(args: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stdout) of a fresh process."""
    t = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args[:4])}... failed with {proc.returncode}")
    return time.perf_counter() - t, usage.ru_maxrss / 1024, out


def ours(queries: list[str], work: Path) -> dict:
    config = build_config({}, data_dir=SQUAD / "corpus.jsonl", index_dir=work / "index")
    assistant = Assistant(config)
    assistant.build(warn=print, full=True)  # exports the encoder if needed; the timed build follows
    embedder = assistant.embedder
    texts = [c.text for d in read_corpus(config.data_dir, print)
             for c in chunk_document(d, load_tokenizer(embedder.path), config.chunk_tokens, config.overlap_tokens)]
    t = time.perf_counter()
    embedder.encode(texts)
    raw = time.perf_counter() - t
    report = assistant.build(warn=print, full=True)
    assistant.set_threads(1)
    index = assistant.index
    times = []
    for q in queries:
        embedder._cache.clear()
        t = time.perf_counter()
        hybrid_search(index.store, index.lexical, embedder, q, 5)
        times.append((time.perf_counter() - t) * 1000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    cold = [timed_child([sys.executable, "-m", "qa", "search", "--index", str(work / "index"), "-k", "5",
                         "Who directs the Secretariat?"], env) for _ in range(3)]
    return {"chunks": len(texts), "raw_encode_chunks_per_s": len(texts) / raw,
            "build_chunks_per_s": report.chunks / report.seconds, "search_ms_p50": statistics.median(times),
            "start_to_first_query_s": statistics.median(c[0] for c in cold), "rss_mb": max(c[1] for c in cold)}


def langchain(queries: int, work: Path) -> dict:
    python = str(peers_venv())
    script = str(ROOT / "bench" / "peers" / "langchain_search.py")
    corpus, questions = str(SQUAD / "corpus.jsonl"), str(SQUAD / "queries.jsonl")
    _, _, out = timed_child([python, script, corpus, questions, "--queries-count", str(queries),
                             "--save", str(work / "langchain")])
    result = json.loads(out.strip().splitlines()[-1])
    cold = [timed_child([python, script, corpus, questions, "--cold", str(work / "langchain")]) for _ in range(3)]
    result["start_to_first_query_s"] = statistics.median(c[0] for c in cold)
    result["rss_mb"] = max(c[1] for c in cold)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", type=int, default=200)
    args = p.parse_args()
    print(f"cpu: {cpu_flags()}")
    if not (SQUAD / "corpus.jsonl").is_file():
        sys.exit(f"error: the benchmark corpus is missing: {SQUAD} (../shared/eval beside the checkout)")
    queries = jsonl_texts(SQUAD / "queries.jsonl", args.queries)
    work = Path(temp_dir("qa-peers-"))
    them = langchain(args.queries, work)
    us = ours(queries, work)
    print(f"{'':<34}{'qa (onnx-int8)':>16}{'LangChain':>12}{'ratio':>8}")
    rows = [("chunks", "chunks", "{:.0f}"), ("raw encode, chunks/s", "raw_encode_chunks_per_s", "{:.1f}"),
            ("build, chunks/s", "build_chunks_per_s", "{:.1f}"), ("search top-5 p50, ms", "search_ms_p50", "{:.2f}"),
            ("fresh process to 1st query, s", "start_to_first_query_s", "{:.2f}"), ("peak RSS, MB", "rss_mb", "{:.0f}")]
    for label, key, fmt in rows:
        ratio = us[key] / them[key] if them[key] else float("nan")
        print(f"{label:<34}{fmt.format(us[key]):>16}{fmt.format(them[key]):>12}{ratio:>7.2f}x")
    print(f"build over own raw encode: qa {us['build_chunks_per_s'] / us['raw_encode_chunks_per_s']:.2f}x, "
          f"LangChain {them['build_chunks_per_s'] / them['raw_encode_chunks_per_s']:.2f}x; LangChain's search "
          f"spends {them['encode_query_ms_p50']:.2f} ms p50 encoding the question")


if __name__ == "__main__":
    main()
