"""The built-in evaluation: a BEIR-layout dataset indexed with the users' pipeline, then retrieval
(document level), answer and abstention metrics.

A dataset folder holds corpus.jsonl {"id","title","text"}, queries.jsonl {"id","text"}, qrels.tsv
(query-id, corpus-id, score; one header line) and optionally answers.jsonl {"id","answers"} and
unanswerable.txt (one query id per line). A document ranks by its best chunk.
"""
from __future__ import annotations

import hashlib
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from .config import Config
from .errors import IndexMismatch, IndexMissing, QAError

RETRIEVAL_DEPTH = 100  # chunks retrieved per query, enough for 10 distinct documents


class BadDataset(QAError):
    """The evaluation folder lacks a file or holds one that cannot be read."""


@dataclass(frozen=True)
class Dataset:
    name: str
    corpus: Path
    queries: dict[str, str]  # id -> text, in file order
    histories: dict[str, list[str]]  # id -> earlier questions of a follow-up (the optional "history" field)
    qrels: dict[str, dict[str, int]]  # query id -> {document id: relevance}
    answers: dict[str, list[str]]
    unanswerable: frozenset[str]


@dataclass(frozen=True)
class EvalReport:
    dataset: str
    queries: int
    k: int
    retrieval: dict = field(default_factory=dict)  # recall@1/5/10, mrr@10, ndcg@10 over queries with qrels
    answers: dict = field(default_factory=dict)  # accuracy, answered share (when answers are given)
    abstention: dict = field(default_factory=dict)  # when unanswerable questions are given
    timings: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def _jsonl(path: Path) -> list[dict]:
    rows = []
    try:
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    rows.append(json.loads(line))
    except OSError as e:
        raise BadDataset(f"cannot read {path}: {e.strerror}") from None
    except ValueError:
        raise BadDataset(f"{path} line {number} is not JSON") from None
    return rows


def load_dataset(folder: Path, queries: Path | None = None, qrels: Path | None = None) -> Dataset:
    """The dataset in folder; queries/qrels replace queries.jsonl/qrels.tsv (e.g. a train split)."""
    corpus = folder / "corpus.jsonl"
    if not corpus.is_file():
        raise BadDataset(f"{folder} has no corpus.jsonl (expected the BEIR layout: corpus.jsonl, queries.jsonl, "
                         "qrels.tsv)")
    try:
        rows = _jsonl(queries or folder / "queries.jsonl")
        query_rows = {str(r["id"]): str(r["text"]) for r in rows}
        histories = {str(r["id"]): [str(h) for h in r["history"]] for r in rows if r.get("history")}
    except (KeyError, TypeError):
        raise BadDataset(f"every line of {queries or folder / 'queries.jsonl'} needs an id and a text") from None
    judged: dict[str, dict[str, int]] = {}
    qrels_path = qrels or folder / "qrels.tsv"
    try:
        lines = qrels_path.read_text(encoding="utf-8").splitlines()[1:]
    except OSError as e:
        raise BadDataset(f"cannot read {qrels_path}: {e.strerror}") from None
    for number, line in enumerate(lines, start=2):
        parts = line.split("\t")
        if len(parts) < 3 or not parts[2].strip().lstrip("-").isdigit():
            raise BadDataset(f"{qrels_path} line {number}: expected query-id, corpus-id, score")
        if int(parts[2]) > 0:
            judged.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    answers = {}
    if (folder / "answers.jsonl").is_file():
        answers = {str(r["id"]): list(r["answers"]) for r in _jsonl(folder / "answers.jsonl")}
    unanswerable = frozenset()
    if (folder / "unanswerable.txt").is_file():
        unanswerable = frozenset(x.strip() for x in (folder / "unanswerable.txt").read_text().split() if x.strip())
    if queries is not None or qrels is not None:  # a split: only its judged (or unanswerable) queries
        query_rows = {q: t for q, t in query_rows.items() if q in judged or q in unanswerable}
    return Dataset(folder.name, corpus, query_rows, histories, judged, answers, unanswerable)


def take(dataset: Dataset, limit: int | None) -> Dataset:
    """A deterministic slice: every n-th query (in file order) so that `limit` remain."""
    if not limit or limit >= len(dataset.queries):
        return dataset
    ids = list(dataset.queries)
    step = len(ids) / limit
    kept = [ids[int(i * step)] for i in range(limit)]
    return replace(dataset, queries={q: dataset.queries[q] for q in kept})


def index_config(config: Config, dataset: Dataset, cache_dir: Path) -> Config:
    """The config that indexes the dataset's corpus into a cache folder named by its content and model."""
    digest = hashlib.sha256()
    with dataset.corpus.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    from .indexing import new_index_backend

    backend = config.backend or new_index_backend(config).backend
    digest.update(f"\0{config.model}\0{config.chunk_tokens}\0{config.overlap_tokens}\0{backend}".encode())
    return replace(config, data_dir=dataset.corpus, backend=backend,
                   index_dir=cache_dir / f"{dataset.name}-{digest.hexdigest()[:16]}")


def document_id(source: str) -> str:
    return source.split("#", 1)[1] if "#" in source else source


def ranked_documents(hits, n: int) -> list[str]:
    seen: dict[str, None] = {}
    for h in hits:
        seen.setdefault(document_id(h.chunk.source), None)
        if len(seen) == n:
            break
    return list(seen)


def retrieval_scores(ranked: list[str], relevant: dict[str, int], k: int) -> dict[str, float]:
    out = {f"recall@{n}": len(set(ranked[:n]) & set(relevant)) / len(relevant) for n in (1, 5, k)}
    first = next((i for i, d in enumerate(ranked[:k]) if d in relevant), None)
    out[f"mrr@{k}"] = 0.0 if first is None else 1.0 / (first + 1)
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sum(r / math.log2(i + 2) for i, r in enumerate(sorted(relevant.values(), reverse=True)[:k]))
    out[f"ndcg@{k}"] = dcg / ideal if ideal else 0.0
    return out


def normalize(text: str) -> str:
    return " ".join(text.lower().split())


def answer_is_correct(answer, gold: list[str]) -> bool:
    cited = normalize(" ".join(c.text for c in answer.citations))
    return not answer.abstained and any(normalize(g) in cited for g in gold if g.strip())


def auroc(positive: list[float], negative: list[float]) -> float:
    """P(a positive scores above a negative), ties counting half (the Mann-Whitney U statistic)."""
    if not positive or not negative:
        return float("nan")
    ranked = sorted([(s, 1) for s in positive] + [(s, 0) for s in negative])
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        mid = (i + j + 1) / 2  # the mean 1-based rank of the tie group
        rank_sum += mid * sum(label for _, label in ranked[i:j])
        i = j
    n_pos, n_neg = len(positive), len(negative)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def evaluate(assistant_factory: Callable[[Config], object], config: Config, dataset: Dataset, k: int,
             cache_dir: Path, warn: Callable[[str], None], progress: bool = False) -> EvalReport:
    """Index (or reuse the cached index of) the corpus, then run every query through search and ask."""
    from tqdm import tqdm

    from .answering import compose_answer
    from .assistant import with_context

    cfg = index_config(config, dataset, cache_dir)
    assistant = assistant_factory(cfg)
    t0 = time.perf_counter()
    try:
        assistant.reload()
        built = False
    except (IndexMissing, IndexMismatch, QAError):
        assistant.build(warn, progress=progress)
        built = True
    index_seconds = time.perf_counter() - t0
    assistant.set_threads(config.threads)  # built with every core, questions answered as when serving
    assistant.embedder.warm_up()
    if assistant.reader is not None:
        assistant.reader.warm_up()

    per_query: dict[str, list[float]] = {}
    search_ms, answer_ms = [], []
    correct = answered = answerable = 0
    confidences_answerable, confidences_unanswerable = [], []
    abstained_answerable = abstained_unanswerable = 0
    for qid, text in tqdm(dataset.queries.items(), desc="Questions", unit="q", disable=not progress,
                          file=sys.stderr):
        query = with_context(text, dataset.histories.get(qid, []))
        t = time.perf_counter()
        hits = assistant.search(query, RETRIEVAL_DEPTH)
        search_ms.append((time.perf_counter() - t) * 1000)
        if qid in dataset.qrels:
            for name, value in retrieval_scores(ranked_documents(hits, k), dataset.qrels[qid], k).items():
                per_query.setdefault(name, []).append(value)
        if not (dataset.answers or dataset.unanswerable):
            continue
        t = time.perf_counter()
        answer = compose_answer(text, hits[:cfg.top_k], assistant.embedder, assistant.index.store,
                                assistant.min_score, query=query, reader=assistant.reader,
                                vocabulary=assistant.vocabulary(assistant.index))
        answer_ms.append((time.perf_counter() - t) * 1000)
        if qid in dataset.unanswerable:
            confidences_unanswerable.append(answer.confidence)
            abstained_unanswerable += answer.abstained
        elif dataset.answers.get(qid):
            answerable += 1
            confidences_answerable.append(answer.confidence)
            abstained_answerable += answer.abstained
            answered += not answer.abstained
            correct += answer_is_correct(answer, dataset.answers[qid])

    report = EvalReport(dataset=dataset.name, queries=len(dataset.queries), k=k)
    if per_query:
        report.retrieval.update({"queries": len(per_query["recall@1"]),
                                 **{n: round(statistics.fmean(v), 4) for n, v in per_query.items()}})
    if answerable:
        report.answers.update({"questions": answerable, "accuracy": round(correct / answerable, 4),
                               "accuracy_when_answered": round(correct / answered, 4) if answered else 0.0})
    if dataset.unanswerable and confidences_unanswerable:
        report.abstention.update({
            "unanswerable": len(confidences_unanswerable),
            "abstained_on_unanswerable": round(abstained_unanswerable / len(confidences_unanswerable), 4),
            "abstained_on_answerable": round(abstained_answerable / answerable, 4) if answerable else 0.0,
            "auroc": round(auroc([-c for c in confidences_unanswerable], [-c for c in confidences_answerable]), 4),
            "threshold": assistant.min_score})
    report.timings.update({"index_seconds": round(index_seconds, 1), "index_reused": not built,
                           "search_ms_p50": round(statistics.median(search_ms), 2) if search_ms else 0.0})
    if answer_ms:
        report.timings["answer_ms_p50"] = round(statistics.median(answer_ms), 2)
    return report
