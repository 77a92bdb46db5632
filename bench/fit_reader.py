"""Fit the reader's weight and abstention threshold on the threshold part of the even SQuAD 2.0 dev articles (the
articles qa/train_reader.py kept out of training; never the odd ones), and write them into qa/models/reader.json.

Every question of those articles is asked over the whole dev corpus, as `qa eval` does, with the reader on and no
threshold. The weight (the reader's share of a unit's answer score, answering.read_units) is the one of WEIGHTS
whose best-unit scores tell answerable from unanswerable questions best (AUROC); the threshold is the answer
confidence below which --miss (default 8%) of the answerable questions fall. It prints, at that threshold, the share
of unanswerable questions abstained on, the AUROC and the answer accuracy. --dry-run prints without writing.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from qa.answering import compose_answer, read_units, score_sentences  # noqa: E402
from qa.assistant import Assistant, with_context  # noqa: E402
from qa.config import build_config  # noqa: E402
from qa.evaluation import RETRIEVAL_DEPTH, answer_is_correct, auroc, index_config, load_dataset  # noqa: E402
from qa.reader import MODELS_DIR, manifest_path  # noqa: E402
from qa.train_reader import SHARED, split_questions  # noqa: E402


WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def confidences(dataset, cache: Path, reader: str = "onnx", weight: float | None = None,
                top_k: int | None = None) -> list[tuple[str, float, bool, bool]]:
    """(id, confidence, answerable, correct when answered) of every question of the dataset; weight: the reader's
    share of the answer score (None: every one of WEIGHTS; then the confidence is a tuple, one per weight)."""
    config = build_config(os.environ, reader=reader, min_score=0.0, cache_dir=str(cache))
    if top_k:
        config = replace(config, top_k=top_k)
    cfg = index_config(config, dataset, cache / "eval")
    assistant = Assistant(cfg)
    try:
        assistant.reload()
    except Exception:
        assistant.build(lambda _m: None)
    assistant.set_threads(1)
    out = []
    for qid, text in dataset.queries.items():
        query = with_context(text, [])
        hits = assistant.search(query, RETRIEVAL_DEPTH)[:cfg.top_k]
        gold = dataset.answers.get(qid, [])
        if weight is None and assistant.reader is not None:
            scored = score_sentences(text, hits, assistant.embedder, assistant.index.store)
            cands = []
            if scored:
                assistant.reader.fitted["weight"] = 1.0
                cands = [(p, next(s for s, c in scored if c is cand)) for p, cand in
                         read_units(text, scored, assistant.reader)[0]]
            best = tuple(max((w * p + (1 - w) * s for p, s in cands), default=0.0) for w in WEIGHTS)
            out.append((qid, best, qid not in dataset.unanswerable, False))
            continue
        if assistant.reader is not None:
            assistant.reader.fitted["weight"] = weight
        answer = compose_answer(text, hits, assistant.embedder, assistant.index.store, 0.0,
                                query=query, reader=assistant.reader)
        out.append((qid, answer.confidence, qid not in dataset.unanswerable,
                    qid not in dataset.unanswerable and answer_is_correct(answer, gold)))
    return out


def summary(rows, threshold: float) -> dict:
    pos = [c for _, c, a, _ in rows if a]
    neg = [c for _, c, a, _ in rows if not a]
    return {"threshold": round(threshold, 4), "auroc": round(auroc(pos, neg), 4),
            "abstained_on_answerable": round(sum(c < threshold for c in pos) / len(pos), 4),
            "abstained_on_unanswerable": round(sum(c < threshold for c in neg) / len(neg), 4),
            "accuracy": round(sum(ok and c >= threshold for _, c, a, ok in rows if a) / len(pos), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--miss", type=float, default=0.08, help="share of answerable questions to abstain on")
    parser.add_argument("--cache", type=Path, default=HERE.parent / ".cache")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--reader", default="onnx", help="none: the scorer's figures on the same questions, "
                        "for comparison (implies --dry-run)")
    args = parser.parse_args()
    _, fit, articles = split_questions(SHARED)
    ids = {q.id for q in fit}
    with tempfile.TemporaryDirectory() as tmp:
        queries = Path(tmp) / "queries.jsonl"
        source = SHARED / "eval" / "squad_v2_dev" / "queries.jsonl"
        queries.write_text("".join(line for line in source.open(encoding="utf-8") if json.loads(line)["id"] in ids))
        dataset = load_dataset(SHARED / "eval" / "squad_v2_dev", queries=queries)
        weight, by_weight = None, {}
        if args.reader == "onnx":
            per_weight = confidences(dataset, args.cache)
            aurocs = [auroc([r[1][i] for r in per_weight if r[2]], [r[1][i] for r in per_weight if not r[2]])
                      for i in range(len(WEIGHTS))]
            print("AUROC by reader weight: " + ", ".join(f"{w}: {a:.4f}" for w, a in zip(WEIGHTS, aurocs)))
            weight = WEIGHTS[max(range(len(WEIGHTS)), key=lambda i: aurocs[i])]
            by_weight = {str(w): round(a, 4) for w, a in zip(WEIGHTS, aurocs)}
        rows = confidences(dataset, args.cache, reader=args.reader, weight=weight)
    answerable = sorted(c for _, c, a, _ in rows if a)
    threshold = answerable[int(args.miss * len(answerable))]
    result = summary(rows, threshold)
    result["weight"] = weight
    print(json.dumps({"articles": articles, "questions": len(rows), **result}))
    if not args.dry_run and args.reader == "onnx":
        path = manifest_path(MODELS_DIR)
        info = json.loads(path.read_text(encoding="utf-8"))
        info["threshold"], info["weight"] = result["threshold"], weight
        info["threshold_fit"] = {"articles": articles, "questions": len(rows), "rule": f"{args.miss:.0%} of the "
                                 "answerable questions fall below it", **result, "auroc_by_weight": by_weight}
        path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        print(f"wrote the threshold into {path}")


if __name__ == "__main__":
    main()
