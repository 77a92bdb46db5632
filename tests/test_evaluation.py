"""The evaluation's metrics, its dataset loading, and the .jsonl data format."""
import json
import math

import numpy as np
import pytest

from qa.evaluation import BadDataset, auroc, load_dataset, ranked_documents, retrieval_scores, take
from qa.reading import read_corpus
from qa.records import Chunk, Hit
from qa.retrieval import fuse


def test_retrieval_scores_by_hand():
    s = retrieval_scores(["d3", "d1", "d9"], {"d1": 1, "d2": 1}, 10)
    assert s["recall@1"] == 0 and s["recall@5"] == 0.5 and s["mrr@10"] == 0.5
    ideal = 1 + 1 / math.log2(3)
    assert s["ndcg@10"] == pytest.approx((1 / math.log2(3)) / ideal)
    assert retrieval_scores(["d1"], {"d1": 1}, 10) == {"recall@1": 1, "recall@5": 1, "recall@10": 1,
                                                        "mrr@10": 1, "ndcg@10": 1}


def test_auroc_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    pos, neg = list(rng.normal(1, 1, 40).round(1)), list(rng.normal(0, 1, 50).round(1))
    pairs = [(p > n) + 0.5 * (p == n) for p in pos for n in neg]
    assert auroc(pos, neg) == pytest.approx(sum(pairs) / len(pairs))
    assert auroc([1, 2], [0]) == 1 and auroc([0], [1, 2]) == 0 and auroc([1], [1]) == 0.5


def test_documents_rank_by_their_best_chunk():
    def hit(rank, source):
        return Hit(rank, 1.0 / rank, Chunk(str(rank), source, 0, 1, 1, "x"))
    hits = [hit(1, "c.jsonl#b"), hit(2, "c.jsonl#a"), hit(3, "c.jsonl#b"), hit(4, "notes.txt")]
    assert ranked_documents(hits, 10) == ["b", "a", "notes.txt"]
    assert ranked_documents(hits, 2) == ["b", "a"]


def test_fusion_weighs_cosine_against_scaled_bm25():
    dense, lexical = np.array([0.8, 0.5, 0.1]), np.array([0.0, 10.0, 5.0])
    assert fuse(dense, lexical, 1.0).tolist() == pytest.approx(dense.tolist())
    assert fuse(dense, lexical, 0.0).tolist() == pytest.approx([0.0, 1.0, 0.5])
    assert fuse(dense, np.zeros(3), 0.5).tolist() == pytest.approx((dense / 2).tolist())


def write_dataset(folder, queries, qrels, answers=None, unanswerable=None):
    folder.mkdir()
    (folder / "corpus.jsonl").write_text('{"id": "d1", "title": "T", "text": "x"}\n')
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels))
    if answers:
        (folder / "answers.jsonl").write_text("".join(json.dumps({"id": q, "answers": a}) + "\n" for q, a in answers))
    if unanswerable:
        (folder / "unanswerable.txt").write_text("\n".join(unanswerable) + "\n")


def test_a_dataset_loads_with_histories_and_slices_deterministically(tmp_path):
    queries = [{"id": f"q{i}", "text": f"question {i}"} for i in range(10)]
    queries[3]["history"] = ["earlier"]
    write_dataset(tmp_path / "ds", queries, [(f"q{i}", "d1", 1) for i in range(10)] + [("q9", "d2", 0)],
                  answers=[("q1", ["a"])], unanswerable=["q2"])
    ds = load_dataset(tmp_path / "ds")
    assert len(ds.queries) == 10 and ds.histories == {"q3": ["earlier"]}
    assert ds.qrels["q9"] == {"d1": 1}  # a zero score is not relevant
    assert ds.answers == {"q1": ["a"]} and ds.unanswerable == {"q2"}
    assert list(take(ds, 3).queries) == ["q0", "q3", "q6"] == list(take(ds, 3).queries)


def test_a_broken_dataset_is_one_clear_error(tmp_path):
    with pytest.raises(BadDataset, match="no corpus.jsonl"):
        load_dataset(tmp_path)
    write_dataset(tmp_path / "ds", [{"id": "q1", "text": "x"}], [("q1", "d1", "high")])
    with pytest.raises(BadDataset, match="qrels.tsv line 2"):
        load_dataset(tmp_path / "ds")


def test_jsonl_documents_cite_their_id_and_bad_lines_are_skipped(tmp_path):
    (tmp_path / "docs.jsonl").write_text(
        '{"id": "a1", "title": "Alpha", "text": "First text."}\n'
        'not json\n'
        '{"id": "a2", "text": "Second text."}\n'
        '{"id": "a1", "text": "Again."}\n'
        '{"title": "no id", "text": "x"}\n\n', encoding="utf-8")
    warnings = []
    docs = list(read_corpus(tmp_path, warnings.append))
    assert [(d.source, d.text) for d in docs] == [("docs.jsonl#a1", "Alpha\n\nFirst text."),
                                                  ("docs.jsonl#a2", "Second text.")]
    assert [w.split(":")[0] for w in warnings] == ["skipped docs.jsonl line 2", "skipped docs.jsonl line 4",
                                                   "skipped docs.jsonl line 5"]
