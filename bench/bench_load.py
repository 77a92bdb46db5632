"""Benchmark: the HTTP API under concurrent load while the index is rebuilt twice, then overload.

    python bench/bench_load.py [--clients 32] [--questions 50] [--docs 300] [--overload-clients 128]

A temporary data folder (data/osce_overview.txt plus --docs SQuAD 2.0 dev paragraphs, one file each) is
indexed and served by `python -m qa serve` on a free port. Then:
- load: --clients threads, each with its own keep-alive connection, ask --questions questions each through
  POST /api/ask (the default corpus's questions and SQuAD questions), timing every request. Meanwhile the
  index is rebuilt twice with `python -m qa index` (1: 50 SQuAD paragraphs and a marker file added;
  2: ten files changed, the marker among them, and twenty deleted), and each build is checked to be picked
  up by the running server: /api/health's files, chunks and built_at, then a question only the new build
  answers. Prints requests, errors by status (anything but 200; 429s separately), answers/s, p50/p95/p99,
  the rebuild times and whether each build was picked up, and whether that happened before the load ended;
- overload: --overload-clients threads at once, --overload-requests each, client timeout --overload-timeout s
  (a little above the server's 10 s wait for a free slot, so a timeout means neither an answer nor "busy"):
  counts by status, and the first 429's Retry-After and JSON. 128 clients only queue for about a second here;
  `--overload-clients 2500 --overload-requests 1` queues past the 10 s wait.
The last line is the figures as JSON. Needs ../shared/eval (SQuAD) beside the checkout.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, SQUAD_DIR, cpu_flags, free_port, jsonl_texts, percentile, require, squad_files, temp_dir  # noqa: E402

OSCE_QUESTIONS = jsonl_texts(ROOT / "eval" / "osce" / "queries.jsonl")
# (marker file text, a question only that text answers, what its cited sentence must contain), one per rebuild
MARKERS = [("The Vellmark Observatory was founded by Ottilie Brandqvist in 1911.\n",
            "Who founded the Vellmark Observatory?", "Brandqvist"),
           ("In 1954 the Vellmark Observatory moved its telescopes to Kestrel Point, a headland north of Harrowdene.\n",
            "Where did the Vellmark Observatory move its telescopes in 1954?", "Kestrel Point")]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}


def squad(docs: int, extra: int) -> tuple[list[dict], list[str]]:
    """The first docs + extra SQuAD paragraphs, and the questions about the first `docs` of them."""
    with (SQUAD_DIR / "corpus.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(line) for _, line in zip(range(docs + extra), f)]
    ids = {r["id"] for r in rows[:docs]}
    qrels = dict(line.split("\t")[:2] for line in (SQUAD_DIR / "qrels.tsv").read_text(encoding="utf-8").splitlines()[1:])
    with (SQUAD_DIR / "queries.jsonl").open(encoding="utf-8") as f:
        questions = [q["text"] for q in map(json.loads, f) if qrels.get(q["id"]) in ids]
    return rows, questions


def request(conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None):
    """(status, headers, parsed JSON or None) over a kept-alive connection."""
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
    r = conn.getresponse()
    raw = r.read()
    try:
        return r.status, dict(r.getheaders()), json.loads(raw)
    except ValueError:
        return r.status, dict(r.getheaders()), None


def client(port: int, questions: list[str], timeout: float, results: list, first_429: list) -> None:
    """Ask each question in turn; results gets (status or 'timeout'/error name, ms, finished at)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    for q in questions:
        t = time.perf_counter()
        try:
            status, headers, body = request(conn, "POST", "/api/ask", {"question": q})
            if status == 429 and not first_429:
                first_429.append({"retry_after": headers.get("retry-after"), "body": body})
        except TimeoutError:
            status = "timeout"
        except OSError as e:  # reset, refused, remote disconnect: a fresh connection for the next question
            status = type(e).__name__
        if not isinstance(status, int):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        results.append((status, (time.perf_counter() - t) * 1000, time.perf_counter()))
    conn.close()


def health(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        return request(conn, "GET", "/api/health")[2] or {}
    except OSError:
        return {}
    finally:
        conn.close()


def answers_with(port: int, question: str, needle: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        status, _, body = request(conn, "POST", "/api/ask", {"question": question})
    finally:
        conn.close()
    return status == 200 and any(needle in c["text"] for c in body.get("citations", []))


def index(data: Path, idx: Path) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "qa", "index", "--quiet", "--data", str(data), "--index", str(idx)],
                   cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def rebuild(n: int, change, data: Path, idx: Path, port: int) -> dict:
    """Change the data folder, index it, then wait (up to 60 s) until the server serves the new build."""
    before = health(port)
    change()
    start = time.perf_counter()
    seconds = index(data, idx)
    done, files, h = time.perf_counter(), sum(1 for _ in data.rglob("*.txt")), {}
    while time.perf_counter() < done + 60:
        h = health(port)
        if h.get("files") == files and (h.get("chunks"), h.get("built_at")) != (before.get("chunks"), before.get("built_at")):
            break
        time.sleep(0.1)
    seen_at = time.perf_counter() if h.get("files") == files else None
    _, question, needle = MARKERS[n]
    return {"seconds": round(seconds, 2), "files": files, "seen_at": seen_at, "window": (start, seen_at or done),
            "picked_up_after_s": None if seen_at is None else round(seen_at - done, 2),
            "marker_answered": answers_with(port, question, needle)}


def run_clients(port: int, question_lists: list[list[str]], timeout: float):
    results, first_429 = [], []
    threads = [threading.Thread(target=client, args=(port, qs, timeout, results, first_429), daemon=True)
               for qs in question_lists]
    for th in threads:
        th.start()
    return threads, results, first_429


def summary(results: list, wall: float) -> dict:
    statuses = Counter(r[0] for r in results)
    ms = [r[1] for r in results if r[0] == 200]
    return {"requests": len(results), "ok": statuses[200], "by_status": {str(k): v for k, v in statuses.items()},
            "errors": len(results) - statuses[200], "429": statuses[429], "timeouts": statuses["timeout"],
            "answers_per_s": round(statuses[200] / wall, 1),
            **{f"p{q}_ms": round(percentile(ms, q / 100), 1) if ms else None for q in (50, 95, 99)}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--questions", type=int, default=50, help="questions per client")
    p.add_argument("--docs", type=int, default=300, help="SQuAD paragraphs in the first build")
    p.add_argument("--overload-clients", type=int, default=128)
    p.add_argument("--overload-requests", type=int, default=5)
    p.add_argument("--overload-timeout", type=float, default=15.0)
    args = p.parse_args()
    print(f"cpu: {cpu_flags()}")
    require(SQUAD_DIR)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` and atexit clean up

    tmp = Path(temp_dir("qa-bench-load-"))
    rows, squad_questions = squad(args.docs, 50)
    data, idx = squad_files(tmp, args.docs), tmp / "index"
    shutil.copy(ROOT / "data" / "osce_overview.txt", data)
    print(f"first build: {args.docs + 1} files in {index(data, idx):.1f} s")
    port = free_port()
    log = (tmp / "server.log").open("w+")
    server = subprocess.Popen([sys.executable, "-m", "qa", "serve", "--host", "127.0.0.1", "--port", str(port),
                               "--data", str(data), "--index", str(idx)], cwd=ROOT, env=ENV, stdout=log, stderr=log)
    try:
        while health(port).get("status") != "ok":
            if server.poll() is not None:
                sys.exit(f"error: the server exited with {server.returncode}")
            time.sleep(0.2)

        def add_files() -> None:
            more = data / "more"
            more.mkdir()
            for r in rows[args.docs:]:
                (more / f"{r['id']}.txt").write_text(r["text"] + "\n", encoding="utf-8")
            (more / "vellmark.txt").write_text(MARKERS[0][0], encoding="utf-8")

        def change_files() -> None:
            (data / "more" / "vellmark.txt").write_text(MARKERS[1][0], encoding="utf-8")
            for r in rows[:9]:
                with (data / f"{r['id']}.txt").open("a", encoding="utf-8") as f:
                    f.write("This paragraph was edited during the load benchmark.\n")
            for r in rows[args.docs:args.docs + 20]:
                (data / "more" / f"{r['id']}.txt").unlink()

        pool = OSCE_QUESTIONS * 3 + squad_questions  # about a quarter of the questions are on the default corpus
        lists = [[pool[(c * 97 + i * 13) % len(pool)] + f" ({c})" for i in range(args.questions)]
                 for c in range(args.clients)]  # " (c)": each client's questions miss the question-vector cache
        t = time.perf_counter()
        threads, results, first_429 = run_clients(port, lists, timeout=60)
        time.sleep(1)
        builds = [rebuild(0, add_files, data, idx, port), rebuild(1, change_files, data, idx, port)]
        for th in threads:
            th.join()
        end = max(r[2] for r in results)
        load = summary(results, end - t)
        for b in builds:
            seen_at, (w0, w1) = b.pop("seen_at"), b.pop("window")
            b["seen_during_load"] = seen_at is not None and seen_at <= end
            during = [r[1] for r in results if w0 <= r[2] <= w1 and r[0] == 200]  # answered while building/reloading
            b["p95_ms_during"] = round(percentile(during, 0.95), 1) if during else None
        print(f"load: {args.clients} clients x {args.questions} questions = {load['requests']} requests in "
              f"{end - t:.1f} s: {load['answers_per_s']} answers/s, p50 {load['p50_ms']} ms, p95 {load['p95_ms']} ms, "
              f"p99 {load['p99_ms']} ms; {load['errors']} errors (by status {load['by_status']}), "
              f"{load['429']} of them 429")
        for n, b in enumerate(builds, 1):
            print(f"rebuild {n}: {b['seconds']} s, {b['files']} files; picked up (health) "
                  f"{'NO' if b['picked_up_after_s'] is None else '%.2f s after the build' % b['picked_up_after_s']}"
                  f"{' (during the load)' if b['seen_during_load'] else ''}; new-only question answered: "
                  f"{b['marker_answered']}; p95 of answers meanwhile {b['p95_ms_during']} ms")

        lists = [[pool[(c * 31 + i) % len(pool)] + f" [{c}]" for i in range(args.overload_requests)]
                 for c in range(args.overload_clients)]
        t = time.perf_counter()
        threads, results, first_429 = run_clients(port, lists, timeout=args.overload_timeout)
        for th in threads:
            th.join()
        over = summary(results, time.perf_counter() - t)
        print(f"overload: {args.overload_clients} clients x {args.overload_requests}, client timeout "
              f"{args.overload_timeout:g} s: by status {over['by_status']}; p50 {over['p50_ms']} ms, "
              f"p99 {over['p99_ms']} ms; first 429: {first_429[0] if first_429 else 'none'}")
        log.seek(0)
        problems = [line.rstrip() for line in log if "Traceback" in line or "ERROR" in line or "Error" in line]
        print(f"server log: {len(problems)} error lines" + "".join(f"\n  {line}" for line in problems[:10]))
        print(json.dumps({"load": load, "rebuilds": builds, "overload": over,
                          "overload_429_sample": first_429[0] if first_429 else None, "server_errors": len(problems)}))
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
