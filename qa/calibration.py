"""Timing the two ONNX encoders on this machine, once, where the CPU's features do not settle which one a new
index gets. With int8 dot-product instructions (cpu.py) int8 is known to run about 3x faster; without them it
depends on the CPU: on one AVX2-only machine int8 ran no faster than float32, on another (AMD EPYC, AVX2 only)
1.5x faster. So there both exports are made and timed on a few dozen texts (all threads, as a build runs them)
and on one question (one thread, as a request runs it), and int8 is chosen only when it is clearly faster in
both: it is slightly less accurate (cosine to torch: min 0.98, mean 0.99).

The figures are kept in the machine's shared export folder (calibration.json), one record per CPU, ONNX
Runtime version and model weights, so the timing runs once per machine and a moved cache times again.
"""
from __future__ import annotations

import hashlib
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from .cpu import BackendChoice, cpu_features, cpu_name, machine_backend
from .embedding import Embedder, resolve_model_path
from .onnx_export import encoder_file

RECORD_FILE = "calibration.json"
RECORD_VERSION = 1
INT8_MARGIN = 1.2  # int8 must encode at least this many times as fast as float32 to be chosen
_CHOSEN: dict[tuple[Path, str], BackendChoice] = {}  # choices timed by this process that no record could keep
ROUNDS = 3  # alternating timed rounds per backend; the median counts
QUESTION = "How do I rotate the log files every night?"
SAMPLE = (
    "To rotate the logs every night, add this line to your crontab. The job runs at midnight and keeps the last "
    "seven files. Each request is handled by a worker process, and the number of workers can be set in the "
    "configuration file. When the server starts behind a proxy, set the forwarded headers so that the client's "
    "address is logged instead of the proxy's. Timeouts apply to connecting, reading, writing and waiting for a "
    "connection from the pool; each can be set on its own, or all of them at once with a single value. A session "
    "keeps cookies between requests, and the default headers are sent with every request it makes. Uploaded "
    "files are streamed to disk in chunks, so that a large file never has to fit in memory."
).split(". ")


@dataclass(frozen=True)
class Timing:
    texts_per_second: float  # the sample texts, all threads
    question_ms: float  # one question, one thread (p50)


def sample_texts(n: int = 32) -> list[str]:
    """n texts of 2 to 7 sentences of the sample (about 40 to 140 word pieces), the same every time."""
    k = len(SAMPLE)
    return [". ".join(SAMPLE[(i + j) % k] for j in range(2 + i % 6)) + "." for i in range(n)]


def decide(onnx: Timing, int8: Timing) -> BackendChoice:
    """int8 when it is at least INT8_MARGIN times as fast on texts and no slower on one question, else float32."""
    ratio = int8.texts_per_second / onnx.texts_per_second
    figures = (f"int8 {int8.texts_per_second:.1f} texts/s against float32 {onnx.texts_per_second:.1f} "
               f"({ratio:.2f}x), one question {int8.question_ms:.1f} against {onnx.question_ms:.1f} ms")
    if ratio >= INT8_MARGIN and int8.question_ms <= onnx.question_ms:
        return BackendChoice("onnx-int8", f"timed on this CPU (no int8 dot-product instructions): {figures}")
    return BackendChoice("onnx", f"timed on this CPU: {figures}; int8 is not {INT8_MARGIN}x faster here, and "
                         "float32 is the more accurate")


def machine_key(model_file: Path) -> str:
    """What a record holds for: this CPU (name, feature flags, the cores this process may use), ONNX Runtime's
    version and the model's export name (which carries its weights' fingerprint)."""
    import onnxruntime

    flags = hashlib.sha256(" ".join(sorted(cpu_features())).encode()).hexdigest()[:12]
    cores = len(os.sched_getaffinity(0))
    return f"{cpu_name()}|{flags}|{cores} cores|onnxruntime {onnxruntime.__version__}|" \
           f"{model_file.stem.rsplit('-', 1)[0]}"


def new_index_choice(model: str, shared_dir: Path, notice: Callable[[str], None] | None = None) -> BackendChoice:
    """The encoder a new index gets on this machine: int8 where the CPU has int8 dot products, else the faster
    of the two exports as timed here (once per machine; see the module's docstring). notice is told, before the
    timing, that it runs."""
    choice = machine_backend()
    if choice.backend == "onnx-int8":
        return choice
    key = machine_key(encoder_file(shared_dir, model, resolve_model_path(model), "onnx"))
    records = _read(shared_dir)
    if key in records:
        r = records[key]
        return BackendChoice(r["backend"], r["reason"])
    if (shared_dir, key) in _CHOSEN:  # timed already by this process (a record that could not be written)
        return _CHOSEN[shared_dir, key]
    if notice is not None:
        notice("timing the float32 and int8 encoders on this CPU to choose one (once per machine, under a minute)")
    timings = dict(zip(("onnx", "onnx-int8"), time_backends(model, shared_dir)))
    choice = decide(timings["onnx"], timings["onnx-int8"])
    records[key] = {"backend": choice.backend, "reason": choice.reason,
                    "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    **{b: {"texts_per_second": round(t.texts_per_second, 2), "question_ms": round(t.question_ms, 2)}
                       for b, t in timings.items()}}
    if not _write(shared_dir, records):
        _CHOSEN[shared_dir, key] = choice
    return choice


def time_backends(model: str, shared_dir: Path) -> tuple[Timing, Timing]:
    """(float32, int8) timings of the shared exports (made first where missing), alternating ROUNDS times."""
    texts = sample_texts()
    with tempfile.TemporaryDirectory(prefix="qa-calibration-") as folder:
        encoders = [Embedder(model, backend=b, encoder_dir=Path(folder), shared_dir=shared_dir)
                    for b in ("onnx", "onnx-int8")]
        for e in encoders:
            e.encode(texts[:4])  # exported (where missing) and loaded before any timing
        seconds: list[list[float]] = [[], []]
        for _ in range(ROUNDS):
            for e, s in zip(encoders, seconds):
                t = time.perf_counter()
                e.encode(texts)
                s.append(time.perf_counter() - t)
        question: list[list[float]] = [[], []]
        for e in encoders:
            e.set_threads(1)
        for _ in range(5 * ROUNDS):
            for e, q in zip(encoders, question):
                t = time.perf_counter()
                e.encode([QUESTION])
                q.append(time.perf_counter() - t)
        return tuple(Timing(len(texts) / statistics.median(s), 1000 * statistics.median(q))
                     for s, q in zip(seconds, question))


def _read(shared_dir: Path) -> dict:
    try:
        data = json.loads((shared_dir / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != RECORD_VERSION or not isinstance(data.get("machines"), dict):
        return {}
    return {k: r for k, r in data["machines"].items()
            if isinstance(r, dict) and r.get("backend") in ("onnx", "onnx-int8") and isinstance(r.get("reason"), str)}


def _write(shared_dir: Path, records: dict) -> bool:
    """calibration.json, replaced atomically; False where the shared folder cannot be written (this process then
    remembers the choice itself, and another one times again)."""
    name = None
    try:
        shared_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=shared_dir, prefix=".calibration-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": RECORD_VERSION, "machines": records}, f, indent=1)
        os.replace(name, shared_dir / RECORD_FILE)
        return True
    except OSError:
        if name is not None:
            Path(name).unlink(missing_ok=True)
        return False
