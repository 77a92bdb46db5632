"""Benchmark: start-up and the HTTP API on the default corpus.

    python bench/bench_serving.py [--starts 3] [--clients 16] [--per-client 50]

- `python app.py` (index already built) to the first served page (the light chat, before Gradio), to the
  first answered question and to the full chat (Gradio) served, median of --starts fresh starts, and the
  server's memory after that first answer;
- a fresh `python -m qa ask` to its printed answer, median of 5;
- POST /api/ask from one client, one question at a time (own question set, vectors not cached): p50/p95;
- --clients concurrent clients asking --per-client questions each: throughput, p50/p95, errors and 429s.
With --milvus-uri URI, every process uses a Milvus store there (QA_STORE=milvus).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_flags, free_port, jsonl_texts, percentile  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = jsonl_texts(ROOT / "eval" / "osce" / "queries.jsonl")




def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


CHAT_READY: list[float] = []  # seconds from the start to the full chat (Gradio) being served, per start
STORE: dict[str, str] = {}  # QA_STORE / QA_MILVUS_URI for every process started, from --milvus-uri


def env(port: int | None = None) -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    e.update(STORE)
    if port:
        e["QA_PORT"] = str(port)
    return e


def start_app() -> tuple[subprocess.Popen, str, float, float]:
    """(process, url, seconds to the first page, seconds to the first answer)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env(port), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        return _first_page_and_answer(proc, url, t)
    except BaseException:
        proc.terminate()
        proc.wait()
        raise


def _first_page_and_answer(proc: subprocess.Popen, url: str, t: float) -> tuple[subprocess.Popen, str, float, float]:
    while True:
        try:
            if httpx.get(url + "/", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"app.py exited with {proc.returncode}")
        time.sleep(0.02)
    page = time.perf_counter() - t
    r = httpx.post(url + "/api/ask", json={"question": "Who directs the Secretariat?"}, timeout=120)
    r.raise_for_status()
    first = time.perf_counter() - t
    while httpx.get(url + "/config", timeout=120).status_code != 200:  # Gradio's: waits until the full chat is up
        time.sleep(0.1)
    CHAT_READY.append(time.perf_counter() - t)
    return proc, url, page, first


def ask_loop(url: str, questions: list[str], times: list[float], failures: list[int]) -> None:
    with httpx.Client(timeout=60) as client:
        for q in questions:
            t = time.perf_counter()
            r = client.post(url + "/api/ask", json={"question": q})
            times.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                failures.append(r.status_code)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--starts", type=int, default=3)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--per-client", type=int, default=50)
    p.add_argument("--milvus-uri", help="serve from a Milvus store at this URI instead of FAISS")
    args = p.parse_args()
    if args.milvus_uri:
        STORE.update({"QA_STORE": "milvus", "QA_MILVUS_URI": args.milvus_uri})
    subprocess.run([sys.executable, "-m", "qa", "index", "--quiet"], cwd=ROOT, env=env(), check=True,
                   stdout=subprocess.DEVNULL)

    pages, firsts, memory = [], [], []
    for _ in range(args.starts):
        proc, url, page, first = start_app()
        try:
            pages.append(page)
            firsts.append(first)
            memory.append(rss_mb(proc.pid))
        finally:
            proc.terminate()
            proc.wait()
    print(f"cpu: {cpu_flags()}")
    print(f"python app.py: first page {statistics.median(pages):.2f} s, first answer {statistics.median(firsts):.2f} s, "
          f"full chat {statistics.median(CHAT_READY[-args.starts:]):.2f} s (median of {args.starts}); server memory "
          f"after it {statistics.median(memory):.0f} MB")

    asks = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "qa", "ask", "Who directs the Secretariat?"], cwd=ROOT, env=env(),
                       check=True, stdout=subprocess.DEVNULL)
        asks.append(time.perf_counter() - t)
    print(f"python -m qa ask (fresh process): {statistics.median(asks):.2f} s (median of 5)")

    proc, url, _, _ = start_app()
    try:
        times, failures = [], []
        ask_loop(url, QUESTIONS, times, failures)  # first time each question: its vector is not cached
        print(f"HTTP /api/ask, one client, {len(times)} distinct questions: p50 {statistics.median(times):.1f} ms, "
              f"p95 {percentile(times, 0.95):.1f} ms, {len(failures)} failed")
        times, failures = [], []
        threads = [threading.Thread(target=ask_loop, args=(url, [QUESTIONS[(c * 7 + i) % len(QUESTIONS)] + f" ({c})"
                                                                   for i in range(args.per_client)], times, failures))
                   for c in range(args.clients)]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t
        print(f"HTTP /api/ask, {args.clients} concurrent clients x {args.per_client}: {len(times) / wall:.1f} answers/s, "
              f"p50 {statistics.median(times):.0f} ms, p95 {percentile(times, 0.95):.0f} ms, "
              f"{len(failures)} not answered ({sum(1 for f in failures if f == 429)} of them 429 busy)")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
