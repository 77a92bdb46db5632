"""Tune the fusion of dense and BM25 scores on a train split (never on the test queries).

    python bench/tune_fusion.py ../shared/eval/scifact --queries queries_train.jsonl --qrels qrels_train.tsv

Uses the cached evaluation index (`python -m qa eval` builds it). For every query the candidates of both
rankers are scored once; each fusion (normalization x dense weight) is then ranked offline and its
document-level nDCG@10 and Recall@1 are printed, best first.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.assistant import Assistant  # noqa: E402
from qa.config import build_config  # noqa: E402
from qa.embedding import set_threads  # noqa: E402
from qa.evaluation import document_id, index_config, load_dataset, retrieval_scores, take  # noqa: E402
from qa import retrieval  # noqa: E402


def candidates(assistant: Assistant, query: str):
    index = assistant.index
    found = retrieval.candidates(index.store, index.lexical, assistant.embedder.encode_cached([query]), query)
    docs = [document_id(index.store.chunk(i).source) for i in found.ids]
    return docs, found.cosine, found.bm25, found.sentence_cosine


def normalized(x: np.ndarray, how: str) -> np.ndarray:
    if how == "max":
        return x / x.max() if x.max() > 0 else x * 0
    if how == "minmax":
        span = x.max() - x.min()
        return (x - x.min()) / span if span > 0 else x * 0
    if how == "z":
        sd = x.std()
        return (x - x.mean()) / sd if sd > 0 else x * 0
    if how == "rank":  # reciprocal rank, RRF with k=60
        order = np.argsort(-x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(1, len(x) + 1)
        return 1.0 / (60 + r)
    raise ValueError(how)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("dataset")
    p.add_argument("--queries")
    p.add_argument("--qrels")
    p.add_argument("--limit", type=int)
    p.add_argument("--even-articles", action="store_true",
                   help="SQuAD: only questions on even-numbered articles (the calibration half)")
    args = p.parse_args()
    folder = Path(args.dataset).resolve()
    dataset = take(load_dataset(folder, folder / args.queries if args.queries else None,
                                folder / args.qrels if args.qrels else None), args.limit)
    config = build_config({})
    assistant = Assistant(index_config(config, dataset, config.cache_dir / "eval"))
    set_threads(1)
    def wanted(qid: str) -> bool:
        return qid in dataset.qrels and (not args.even_articles or
                                         all(int(d[1:3]) % 2 == 0 for d in dataset.qrels[qid]))

    rows = [(qid, candidates(assistant, text)) for qid, text in dataset.queries.items() if wanted(qid)]
    results = []
    for ws in (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0):
        for weight in (0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9):
            ndcg, r1 = [], []
            for qid, (docs, cosine, lexical, sentences) in rows:
                fused = weight * ((1 - ws) * cosine + ws * sentences) + (1 - weight) * normalized(lexical, "max")
                ranked = list(dict.fromkeys(docs[j] for j in np.argsort(-fused, kind="stable")))[:10]
                s = retrieval_scores(ranked, dataset.qrels[qid], 10)
                ndcg.append(s["ndcg@10"])
                r1.append(s["recall@1"])
            print(f"sentence share {ws} dense weight {weight}: ndcg@10 {statistics.fmean(ndcg):.4f} "
                  f"recall@1 {statistics.fmean(r1):.4f}")
    for how in ("max", "minmax", "z", "rank"):
        for weight in np.arange(0.0, 1.01, 0.1):
            ndcg, r1 = [], []
            for qid, (docs, cosine, lexical, _) in rows:
                dense_part = cosine if how in ("max", "minmax") and how == "max" else normalized(cosine, how)
                fused = weight * dense_part + (1 - weight) * normalized(lexical, how)
                ranked = list(dict.fromkeys(docs[j] for j in np.argsort(-fused, kind="stable")))[:10]
                s = retrieval_scores(ranked, dataset.qrels[qid], 10)
                ndcg.append(s["ndcg@10"])
                r1.append(s["recall@1"])
            results.append((statistics.fmean(ndcg), statistics.fmean(r1), how, round(float(weight), 1)))
    print(f"{len(rows)} queries of {dataset.name}")
    for ndcg, r1, how, weight in sorted(results, reverse=True)[:15]:
        print(f"ndcg@10 {ndcg:.4f}  recall@1 {r1:.4f}  normalization {how:<7} dense weight {weight}")
    for ndcg, r1, how, weight in results:
        if weight in (0.0, 1.0) and how == "max":
            print(f"{'dense only' if weight else 'bm25 only'}: ndcg@10 {ndcg:.4f} recall@1 {r1:.4f}")


if __name__ == "__main__":
    main()
