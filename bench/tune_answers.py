"""Tune sentence selection and abstention on SQuAD 2.0 dev: fit on the even-numbered articles, report on
the odd-numbered ones (SQuAD has no train split here; SciFact has no answers).

    python bench/tune_answers.py ../shared/eval/squad_v2_dev

Uses the cached evaluation index (`python -m qa eval` builds it). Every candidate sentence of the top
passages is scored once; the weights are then searched offline.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa import answering  # noqa: E402
from qa.assistant import Assistant  # noqa: E402
from qa.config import build_config  # noqa: E402
from qa.embedding import set_threads  # noqa: E402
from qa.evaluation import auroc, index_config, load_dataset, normalize, take  # noqa: E402


def collect(assistant: Assistant, dataset, article: dict[str, int], top_k: int) -> list[dict]:
    index = assistant.index
    rows = []
    for qid, text in dataset.queries.items():
        hits = assistant.search(text, top_k)
        qv = assistant.embedder.encode_cached([text])[0]
        cands = answering._candidates(hits, index.store)
        headings = answering.heading_terms(hits)
        terms = answering.key_terms(text)
        gold = [normalize(g) for g in dataset.answers.get(qid, []) if g.strip()]
        feats = np.array([(float(c.vector @ qv),
                           len(terms & answering.unit_terms(c, headings)) / len(terms) if terms else 0.0,
                           answering.type_bonus(text, c.text) > 0, c.hit.score, c.hit.rank) for c in cands],
                         dtype=np.float32).reshape(-1, 5)
        labels = np.array([any(g in normalize(c.text) for g in gold) for c in cands])
        rows.append({"qid": qid, "even": article[qid] % 2 == 0, "answerable": qid not in dataset.unanswerable,
                     "feats": feats, "labels": labels})
    return rows


def selection_accuracy(rows, weights) -> float:
    a, b, c, d = weights
    good = n = 0
    for r in rows:
        if not r["answerable"]:
            continue
        n += 1
        if len(r["feats"]):
            f = r["feats"]
            s = a * f[:, 0] + b * f[:, 1] + c * f[:, 2] + d * f[:, 3]
            good += bool(r["labels"][int(np.argmax(s))])
    return good / n


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("dataset")
    p.add_argument("--limit", type=int)
    args = p.parse_args()
    folder = Path(args.dataset).resolve()
    dataset = take(load_dataset(folder), args.limit)
    article = {}
    for name in ("qrels.tsv", "qrels_unanswerable.tsv"):
        for line in (folder / name).read_text().splitlines()[1:]:
            q, d, _ = line.split("\t")
            article[q] = int(d[1:3])
    config = build_config({})
    assistant = Assistant(index_config(config, dataset, config.cache_dir / "eval"))
    set_threads(1)
    rows = collect(assistant, dataset, article, config.top_k)
    fit = [r for r in rows if r["even"]]
    held = [r for r in rows if not r["even"]]
    print(f"{len(fit)} questions to fit, {len(held)} held out")
    current = (answering.SEMANTIC_WEIGHT, 1 - answering.SEMANTIC_WEIGHT, answering.TYPE_BONUS, answering.PASSAGE_WEIGHT)
    print(f"current weights {current}: top-1 sentence holds the answer {selection_accuracy(fit, current):.4f} "
          f"(fit) {selection_accuracy(held, current):.4f} (held out)")
    grid = []
    for a, c, d in itertools.product((0.5, 0.6, 0.7, 0.8), (0.0, 0.05, 0.1, 0.15), (0.0, 0.1, 0.2, 0.3)):
        w = (a, 1 - a, c, d)
        grid.append((selection_accuracy(fit, w), w))
    for acc, w in sorted(grid, reverse=True)[:8]:
        print(f"  weights {w}: fit {acc:.4f}  held out {selection_accuracy(held, w):.4f}")

    # abstention: the best sentence's score under the current weights, against other evidence
    def best(r, w=current):
        f = r["feats"]
        if not len(f):
            return np.zeros(5, dtype=np.float32), 0.0
        s = w[0] * f[:, 0] + w[1] * f[:, 1] + w[2] * f[:, 2] + w[3] * f[:, 3]
        j = int(np.argmax(s))
        return f[j], float(s[j])

    for name, fn in (("best sentence score", lambda r: best(r)[1]),
                     ("best sentence cosine", lambda r: float(r["feats"][:, 0].max()) if len(r["feats"]) else 0),
                     ("best sentence coverage", lambda r: best(r)[0][1]),
                     ("top passage score", lambda r: float(r["feats"][:, 3].max()) if len(r["feats"]) else 0)):
        for part, group in (("fit", fit), ("held out", held)):
            pos = [-fn(r) for r in group if not r["answerable"]]
            neg = [-fn(r) for r in group if r["answerable"]]
            print(f"AUROC of {name} ({part}): {auroc(pos, neg):.4f}")
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    np.save(out / "squad_rows.npy", np.array(rows, dtype=object), allow_pickle=True)


if __name__ == "__main__":
    main()
