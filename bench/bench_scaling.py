"""Benchmark: the figures behind docs/scaling.md.

    python bench/bench_scaling.py [--docs 300] [--vectors 100000]

1. Ingestion: `qa index --engine local` against `--engine ray` (a local Ray cluster) on the same
   --docs SQuAD 2.0 dev paragraphs, one file each: chunks/s of each (median of 2 fresh builds) and ratio.
2. Embedding throughput per CPU core: the onnx-int8 encoder on one thread, same chunks.
3. Query p50, top-10 dense search of one question vector, one thread: FAISS (the exact index the store
   keeps at this size) against Milvus through MilvusStore (AUTOINDEX, over gRPC on 127.0.0.1): the
   Milvus 2.3.5 binary of the `milvus` package and a Milvus Lite 3.2 server, on --vectors realistic
   vectors (bench_scale.py's generator: clustered around real sentence embeddings).
4. Bytes per vector of FAISS flat, HNSW (M=32), IVF-Flat and IVF-PQ (48 x 8-bit codes), serialized.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cpu_flags, free_port, jsonl_texts, require, squad_files, temp_dir  # noqa: E402

from bench_scale import SQUAD, centres, generate  # noqa: E402
from qa.config import ROOT  # noqa: E402


def fresh_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("QA_")}


def ingestion(docs: int) -> dict:
    work = Path(temp_dir("qa-scaling-"))
    data = squad_files(work, docs)
    rates = {}
    for engine in ("local", "ray"):
        runs = []
        for n in range(2):
            index = work / f"{engine}-{n}"
            t = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "qa", "index", "--data", str(data), "--index", str(index),
                                "--engine", engine, "--quiet"], cwd=ROOT, env=fresh_env(), capture_output=True,
                               text=True, check=True)
            seconds = time.perf_counter() - t
            chunks = int(r.stdout.split(" into ")[1].split(" chunk")[0])
            runs.append(chunks / seconds)
        rates[engine] = statistics.median(runs)
    shutil.rmtree(work, ignore_errors=True)
    return {"chunks": chunks, **rates}


def per_core() -> float:
    from qa.embedding import Embedder

    texts = jsonl_texts(SQUAD, 200)
    e = Embedder(backend="onnx-int8", encoder_dir=Path(temp_dir("qa-enc-")), shared_dir=ROOT / ".cache" / "encoders",
                 threads=1)
    e.encode(texts[:20])
    t = time.perf_counter()
    e.encode(texts)
    return len(texts) / (time.perf_counter() - t)



class MilvusLite:
    def __enter__(self) -> str:
        from pymilvus import MilvusClient

        self.folder = Path(temp_dir("qa-milvus-"))
        port = free_port()
        exe = shutil.which("milvus-lite", path=str(Path(sys.executable).parent))
        self.server = subprocess.Popen([exe, "server", "--data-dir", str(self.folder), "--host", "127.0.0.1",
                                        "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        uri = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                MilvusClient(uri=uri, timeout=2).list_collections()
                break
            except Exception:
                time.sleep(0.3)
        return uri

    def __exit__(self, *exc):
        self.server.terminate()
        self.server.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


class Milvus235:
    def __enter__(self) -> str:
        from milvus import MilvusServer

        self.folder = Path(temp_dir("qa-milvus235-"))
        self.server = MilvusServer()
        self.server.set_base_dir(str(self.folder))
        self.server.listen_port = free_port()
        self.server.start()
        return f"http://127.0.0.1:{self.server.listen_port}"

    def __exit__(self, *exc):
        self.server.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def milvus_against_faiss(n: int, server) -> dict:
    import faiss

    from qa.milvus_store import MilvusStore
    from qa.records import Chunk

    rng = np.random.default_rng(0)
    base = generate(centres(2000), 20000, rng, 0.7, 0.9)
    vectors = generate(base, n, rng)
    queries = generate(base, 200, rng, 0.4, 0.8)
    with server as uri:
        store = MilvusStore(uri, "qa_bench", vectors.shape[1]).open(create=True)
        one = np.zeros((1, vectors.shape[1]), dtype=np.float16)
        t = time.perf_counter()
        for a in range(0, n, 2000):
            chunks = [Chunk(id=str(i), source=f"f{i // 100}.txt", start=0, end=1, line=1, text=f"passage {i}")
                      for i in range(a, min(n, a + 2000))]
            store.add(chunks, vectors[a:a + len(chunks)], [one] * len(chunks))
        store.flush()
        insert = n / (time.perf_counter() - t)
        time.sleep(5)  # let the server build its index on the sealed segments
        faiss.omp_set_num_threads(1)
        flat = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
        flat.add_with_ids(vectors, np.arange(n, dtype=np.int64))
        times = {"faiss": [], "milvus": []}
        store.search_ids(queries[:1], 10)
        for q in queries:
            t = time.perf_counter()
            flat.search(q[None, :], 10)
            times["faiss"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            store.search_ids(q[None, :], 10)
            times["milvus"].append((time.perf_counter() - t) * 1000)
        return {"insert_per_s": insert, **{k: statistics.median(v) for k, v in times.items()}}


def bytes_per_vector(n: int) -> dict:
    import faiss

    rng = np.random.default_rng(1)
    vectors = generate(generate(centres(2000), 20000, rng, 0.7, 0.9), n, rng)
    d = vectors.shape[1]
    lists = int(4 * np.sqrt(n))
    out = {}
    for name, index in (("flat", faiss.IndexFlatIP(d)), ("hnsw32", faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)),
                        ("ivf_flat", faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, lists, faiss.METRIC_INNER_PRODUCT)),
                        ("ivf_pq48", faiss.IndexIVFPQ(faiss.IndexFlatIP(d), d, lists, 48, 8, faiss.METRIC_INNER_PRODUCT))):
        if not index.is_trained:
            index.train(vectors[:min(n, 64 * lists)])
        index.add(vectors)
        out[name] = len(faiss.serialize_index(index)) / n
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--docs", type=int, default=300)
    p.add_argument("--vectors", type=int, default=100_000)
    args = p.parse_args()
    print(f"cpu: {cpu_flags()}")
    require(SQUAD)
    ing = ingestion(args.docs)
    print(f"ingestion of {ing['chunks']} chunks, fresh processes, median of 2: local {ing['local']:.1f} chunks/s, "
          f"ray (local cluster) {ing['ray']:.1f} chunks/s, ray / local {ing['ray'] / ing['local']:.2f}x", flush=True)
    print(f"embedding per CPU core (onnx-int8, one thread): {per_core():.1f} chunks/s", flush=True)
    for name, server in (("Milvus 2.3.5 (the milvus package's binary)", Milvus235()), ("Milvus Lite 3.2", MilvusLite())):
        q = milvus_against_faiss(args.vectors, server)
        print(f"{args.vectors:,} vectors, top-10 dense search p50, one client thread: FAISS flat {q['faiss']:.2f} ms, "
              f"{name} {q['milvus']:.2f} ms ({q['milvus'] / q['faiss']:.2f}x); inserts {q['insert_per_s']:.0f} rows/s",
              flush=True)
    sizes = bytes_per_vector(args.vectors)
    print("bytes per 384-d vector, serialized: " + ", ".join(f"{k} {v:.0f}" for k, v in sizes.items()))


if __name__ == "__main__":
    main()
