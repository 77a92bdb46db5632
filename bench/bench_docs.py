"""Answers on real documentation: eval/docs/questions.jsonl over the corpora it names (see eval/docs/README.md).

For each corpus folder (CORPORA/<name>, as eval/docs/README.md recreates them) it builds an index (kept in
--work), asks every question of the chosen split and prints, per corpus and overall:
  contains   answerable questions whose cited text holds every must_contain string
  gold file  answerable questions whose first citation is from the gold file
  refused    unanswerable questions it abstained on; wrongly refused: answerable ones it abstained on
  cited      the median length of the cited text (characters) of the answers given
Run it from another checkout (python /path/to/bench_docs.py --qa-root OLD_CHECKOUT) to compare two versions
on the same set. Report the "test" split; tune on "tune" only.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import cpu_flags  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpora", type=Path, help="folder holding httpx/, flask/, tldr/")
    parser.add_argument("--split", default="test", choices=["tune", "test", "all"])
    parser.add_argument("--questions", type=Path, default=HERE.parent / "eval" / "docs" / "questions.jsonl")
    parser.add_argument("--qa-root", type=Path, default=HERE.parent, help="the checkout whose qa package runs")
    parser.add_argument("--work", type=Path, default=HERE.parent / ".cache" / "bench_docs")
    parser.add_argument("--only", default="", help="comma-separated corpus names")
    parser.add_argument("--show", action="store_true", help="print each question's answer")
    parser.add_argument("--reuse", action="store_true",
                        help="keep an index already built in --work (only when the chunking code is unchanged)")
    parser.add_argument("--json", type=Path, help="write every answer here")
    parser.add_argument("--tag", default="", help="name the index folders with this instead of the commit "
                        "(with --reuse: keep indexes across commits that do not change chunking)")
    parser.add_argument("--rst-as-txt", action="store_true",
                        help="the corpora's .rst files were renamed .txt (for a version that cannot read .rst)")
    args = parser.parse_args()
    sys.path.insert(0, str(args.qa_root.resolve()))
    from qa.assistant import Assistant
    from qa.config import build_config
    from qa.errors import QAError

    questions = [json.loads(line) for line in args.questions.open(encoding="utf-8") if line.strip()]
    if args.split != "all":
        questions = [q for q in questions if q["split"] == args.split]
    names = sorted({q["corpus"] for q in questions})
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    tag = subprocess.run(["git", "-C", str(args.qa_root), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", str(args.qa_root), "status", "--porcelain", "qa"], capture_output=True,
                           text=True).stdout.strip()
    print(f"reader: {os.environ.get('QA_READER', 'onnx')}, threshold: {os.environ.get('QA_MIN_SCORE', 'fitted')}")
    print(f"qa at {args.qa_root} ({tag}{'+changes' if dirty else ''}), split {args.split}, "
          f"cpu: {cpu_flags()}")
    rows, records = [], []
    for name in names:
        try:
            stats = run_corpus(args, name, questions, records, Assistant, build_config, tag, dirty)
        except QAError as e:  # e.g. a version that reads none of the corpus's files
            print(f"{name}: {e}")
            mine = [q for q in questions if q["corpus"] == name]
            stats = {"answerable": sum(q["answerable"] for q in mine),
                     "unanswerable": sum(not q["answerable"] for q in mine), "contains": 0, "gold": 0, "wrong_refusals": 0, "refused": 0, "lengths": [], "ms": [], "build_s": 0.0}
        rows.append((name, stats))
    rows.append(("all", merge([s for _, s in rows])))
    report(rows)
    if args.json:
        args.json.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")


def run_corpus(args, name: str, questions: list[dict], records: list, Assistant, build_config, tag: str,
               dirty: str) -> dict:
    config = build_config(os.environ, data_dir=str(args.corpora / name),
                          index_dir=str(args.work / (f"{name}-{args.tag}" if args.tag else
                                                     f"{name}-{tag}{'-dirty' if dirty else ''}")))
    assistant = Assistant(config)
    t0 = time.perf_counter()
    assistant.build(warn=lambda _m: None, full=not args.reuse)
    built = time.perf_counter() - t0
    assistant.set_threads(1)  # questions answered as when serving: one thread each
    assistant.warm_up()
    stats_chunks = assistant.collection().chunks
    mine = [q for q in questions if q["corpus"] == name]
    if args.rst_as_txt:
        mine = [{**q, "gold_file": q["gold_file"][:-4] + ".txt" if (q["gold_file"] or "").endswith(".rst")
                 else q["gold_file"]} for q in mine]
    stats = score(assistant, mine, records, args.show)
    stats["build_s"] = built
    stats["chunks"] = stats_chunks
    return stats


def report(rows: list) -> None:
    print(f"{'corpus':8} {'answerable':>10} {'contains':>9} {'gold file':>9} {'wrongly refused':>15} "
          f"{'unanswerable':>12} {'refused':>8} {'cited (median chars)':>20} {'build s':>8} {'chunks':>7} "
          f"{'ask p50 ms':>10} {'p95':>6}")
    for name, s in rows:
        a, u = s["answerable"], s["unanswerable"]
        print(f"{name:8} {a:>10} {pct(s['contains'], a):>9} {pct(s['gold'], a):>9} {pct(s['wrong_refusals'], a):>15} "
              f"{u:>12} {pct(s['refused'], u):>8} {statistics.median(s['lengths']) if s['lengths'] else 0:>20.0f} "
              f"{s.get('build_s', 0):>8.1f} {s.get('chunks', 0):>7} {percentile(s['ms'], 50):>10.1f} "
              f"{percentile(s['ms'], 95):>6.1f}")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def score(assistant, questions: list[dict], records: list, show: bool) -> dict:
    s = {"answerable": 0, "unanswerable": 0, "contains": 0, "gold": 0, "wrong_refusals": 0, "refused": 0,
         "lengths": [], "ms": []}
    for q in questions:
        t = time.perf_counter()
        answer = assistant.ask(q["question"])
        s["ms"].append((time.perf_counter() - t) * 1000)
        cited = "\n".join(c.text for c in answer.citations)
        if not answer.abstained:
            s["lengths"].append(sum(len(c.text) for c in answer.citations))
        if q["answerable"]:
            s["answerable"] += 1
            ok = not answer.abstained and all(m in cited for m in q["must_contain"])
            s["contains"] += ok
            s["gold"] += bool(answer.citations) and answer.citations[0].source == q["gold_file"]
            s["wrong_refusals"] += answer.abstained
        else:
            s["unanswerable"] += 1
            ok = answer.abstained
            s["refused"] += ok
        records.append({"id": q["id"], "ok": bool(ok), "abstained": answer.abstained,
                        "confidence": answer.confidence, "answer": answer.answer,
                        "sources": [c.source for c in answer.citations]})
        if show:
            print(f"--- {q['id']} {'OK ' if ok else 'BAD'} {q['question']}  [{q.get('gold_file')}: "
                  f"{q['must_contain']}]\n{answer.answer[:700]}\n  {[c.source for c in answer.citations]} "
                  f"conf {answer.confidence:.3f}")
    return s


def merge(parts: list[dict]) -> dict:
    out = {k: 0 for k in parts[0] if k not in ("lengths", "ms")} if parts else {}
    out["lengths"], out["ms"] = [], []
    for p in parts:
        for k, v in p.items():
            out[k] = out[k] + v
    return out


def pct(n: int, d: int) -> str:
    return f"{100 * n / d:.0f}%" if d else "-"


if __name__ == "__main__":
    main()
