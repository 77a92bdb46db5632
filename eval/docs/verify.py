"""Check eval/docs/questions.jsonl against the corpora it was written for.

    python eval/docs/verify.py [CORPORA_ROOT]      (default: /work/docs-corpora, or $DOCS_CORPORA)

CORPORA_ROOT/<name>/ holds the folders listed in corpora.json, at their repository-relative paths
(e.g. CORPORA_ROOT/httpx/docs/quickstart.md). Every must_contain string must occur verbatim in its
gold_file (read as UTF-8); ids, fields and the split rule are checked too. Exit status 1 on any error.
"""
import json
import os
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
root = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("DOCS_CORPORA", "/work/docs-corpora"))
corpora = json.loads((HERE / "corpora.json").read_text(encoding="utf-8"))
rows = [json.loads(line) for line in (HERE / "questions.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]

errors = []
ids = [r["id"] for r in rows]
if len(ids) != len(set(ids)):
    errors.append(f"duplicate ids: {[i for i, n in Counter(ids).items() if n > 1]}")
keys = {"id", "corpus", "question", "answerable", "gold_file", "must_contain", "split"}
texts = {}
for r in rows:
    if set(r) != keys:
        errors.append(f"{r.get('id')}: fields {sorted(r)}")
        continue
    if r["corpus"] not in corpora or not r["id"].startswith(r["corpus"] + "-"):
        errors.append(f"{r['id']}: corpus {r['corpus']!r}")
    if r["answerable"]:
        if not r["gold_file"] or not 1 <= len(r["must_contain"]) <= 2:
            errors.append(f"{r['id']}: answerable needs a gold_file and 1-2 must_contain strings")
            continue
        path = root / r["corpus"] / r["gold_file"]
        if path not in texts:
            try:
                texts[path] = path.read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                errors.append(f"{r['id']}: cannot read {path}: {exc}")
                continue
        for s in r["must_contain"]:
            if not s or "\n" in s or s not in texts[path]:
                errors.append(f"{r['id']}: {s!r} not found verbatim in {r['gold_file']}")
    elif r["gold_file"] is not None or r["must_contain"] != []:
        errors.append(f"{r['id']}: unanswerable must have gold_file null and must_contain []")

# split rule: within each corpus, sorted by id, odd positions (2nd, 4th, ...) are "test"
for name in corpora:
    for k, qid in enumerate(sorted(r["id"] for r in rows if r["corpus"] == name)):
        want = "test" if k % 2 == 1 else "tune"
        got = next(r["split"] for r in rows if r["id"] == qid)
        if got != want:
            errors.append(f"{qid}: split {got!r}, rule says {want!r}")

counts = Counter((r["corpus"], r["split"], r["answerable"]) for r in rows)
print(f"{'corpus':8} {'split':6} {'answerable':>10} {'unanswerable':>12}")
for name in corpora:
    for split in ("tune", "test"):
        print(f"{name:8} {split:6} {counts[(name, split, True)]:10} {counts[(name, split, False)]:12}")
n_strings = sum(len(r["must_contain"]) for r in rows)
print(f"{len(rows)} questions, {n_strings} must_contain strings checked in {len(texts)} gold files under {root}")
for e in errors:
    print("ERROR", e)
print("OK" if not errors else f"{len(errors)} error(s)")
sys.exit(1 if errors else 0)
