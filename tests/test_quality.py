"""Answer quality, measured: our own question set over the default corpus, and small deterministic slices
of SQuAD 2.0 dev and SciFact run through `python -m qa eval` (the real model, BM25 and FAISS).
The thresholds are what these slices reach, with a little room; full runs are in bench/ and the README."""
import json
from pathlib import Path

from qa.evaluation import answer_is_correct

from conftest import ROOT, run_qa, shared_eval

OWN = ROOT / "eval" / "osce"


def own_questions():
    answers = {r["id"]: r["answers"] for r in map(json.loads, (OWN / "answers.jsonl").open(encoding="utf-8"))}
    return [dict(q, answers=answers[q["id"]]) for q in map(json.loads, (OWN / "queries.jsonl").open(encoding="utf-8"))]


def test_own_question_set_over_the_default_corpus(assistant):
    answerable = correct = wrongly_abstained = unanswerable = abstained = 0
    misses = []
    for q in own_questions():
        answer = assistant.ask(q["text"], history=q.get("history"))
        if q["answers"]:
            answerable += 1
            wrongly_abstained += answer.abstained
            if answer_is_correct(answer, q["answers"]):
                correct += 1
            else:
                misses.append((q["text"], answer.answer))
        else:
            unanswerable += 1
            abstained += answer.abstained
    assert answerable == 48 and unanswerable == 20
    assert correct / answerable >= 0.93, misses  # measured 45/48 with the reader (47/48 without: it refuses 2)
    assert wrongly_abstained / answerable <= 0.05  # the bound on wrong abstentions
    assert abstained / unanswerable >= 0.85


def test_follow_ups_need_their_history(assistant):
    follow_ups = [q for q in own_questions() if q.get("history")]
    assert len(follow_ups) == 8
    with_history = sum(answer_is_correct(assistant.ask(q["text"], history=q["history"]), q["answers"])
                       for q in follow_ups)
    assert with_history >= 7  # on this one-page corpus most follow-ups also find their answer alone (measured
    # 7 of 8 both ways); test_follow_up_retrieval_uses_the_previous_question shows what the history changes


def test_follow_up_retrieval_uses_the_previous_question(assistant):
    from qa.assistant import with_context

    first = "What does the Conflict Prevention Centre do?"
    assert with_context("When was it created?", [first]) == f"{first} When was it created?"
    assert with_context("And the Secretariat?", [first]) == f"{first} And the Secretariat?"  # names too little
    assert with_context("Who directs the Secretariat of the OSCE?", [first]) == "Who directs the Secretariat of the OSCE?"
    assert with_context("When was it created?", [{"role": "user", "content": first},
                                                 {"role": "assistant", "content": "It provides..."}]).startswith(first)
    followed = assistant.search(with_context("When was it created?", [first]), 1)[0].chunk.text
    assert "Created in 1990" in followed


def squad_slice(folder: Path, articles: tuple[str, ...]) -> Path:
    """The SQuAD 2.0 dev paragraphs of some articles, with all their questions, in the BEIR layout."""
    src = shared_eval() / "squad_v2_dev"
    folder.mkdir()
    keep = lambda doc_id: doc_id.split("_")[0] in articles  # noqa: E731
    corpus = [line for line in (src / "corpus.jsonl").open(encoding="utf-8") if keep(json.loads(line)["id"])]
    (folder / "corpus.jsonl").write_text("".join(corpus), encoding="utf-8")
    qrels = [line for line in (src / "qrels.tsv").read_text().splitlines()[1:] if keep(line.split("\t")[1])]
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(qrels) + "\n")
    no_answer = [line.split("\t")[0] for line in (src / "qrels_unanswerable.tsv").read_text().splitlines()[1:]
                 if keep(line.split("\t")[1])]
    (folder / "unanswerable.txt").write_text("\n".join(no_answer) + "\n")
    wanted = {line.split("\t")[0] for line in qrels} | set(no_answer)
    for name in ("queries.jsonl", "answers.jsonl"):
        rows = [line for line in (src / name).open(encoding="utf-8") if json.loads(line)["id"] in wanted]
        (folder / name).write_text("".join(rows), encoding="utf-8")
    return folder


def scifact_slice(folder: Path, queries: int, distractors: int) -> Path:
    """The first SciFact test queries, their relevant abstracts and the first other abstracts."""
    src = shared_eval() / "scifact"
    folder.mkdir()
    chosen = [json.loads(line) for line in (src / "queries.jsonl").open(encoding="utf-8")]
    qrels = [line.split("\t") for line in (src / "qrels.tsv").read_text().splitlines()[1:]]
    judged = {q for q, _, _ in qrels}
    chosen = [q for q in chosen if q["id"] in judged][:queries]
    ids = {q["id"] for q in chosen}
    relevant = {d for q, d, _ in qrels if q in ids}
    corpus, others = [], 0
    for line in (src / "corpus.jsonl").open(encoding="utf-8"):
        doc_id = json.loads(line)["id"]
        if doc_id in relevant or others < distractors:
            corpus.append(line)
            others += doc_id not in relevant
    (folder / "corpus.jsonl").write_text("".join(corpus), encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in chosen), encoding="utf-8")
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" +
                                      "".join("\t".join(r) + "\n" for r in qrels if r[0] in ids))
    return folder


def run_eval(dataset: Path, cache: Path) -> dict:
    r = run_qa("eval", str(dataset), "--json", "--quiet", "--cache", str(cache), timeout=900)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_squad_slice_retrieval_answers_and_abstention(tmp_path):
    report = run_eval(squad_slice(tmp_path / "squad", ("a00", "a01", "a02", "a03")), tmp_path / "cache")
    print(report)
    assert report["retrieval"]["queries"] == 581 and report["abstention"]["unanswerable"] == 579
    assert report["retrieval"]["recall@1"] >= SQUAD_SLICE["recall@1"]
    assert report["answers"]["accuracy"] >= SQUAD_SLICE["accuracy"]
    assert report["abstention"]["auroc"] >= SQUAD_SLICE["auroc"]
    again = run_eval(tmp_path / "squad", tmp_path / "cache")
    assert again["timings"]["index_reused"] is True and again["retrieval"] == report["retrieval"]


def test_scifact_slice_retrieval(tmp_path):
    report = run_eval(scifact_slice(tmp_path / "scifact", 40, 200), tmp_path / "cache")
    print(report)
    assert report["retrieval"]["queries"] == 40
    assert report["retrieval"]["ndcg@10"] >= SCIFACT_SLICE["ndcg@10"]
    assert report["answers"] == {} and report["abstention"] == {}


SQUAD_SLICE = {"recall@1": 0.86, "accuracy": 0.80, "auroc": 0.58}  # measured with the reader: 0.878, 0.823, 0.608
SCIFACT_SLICE = {"ndcg@10": 0.89}  # measured: 0.918
