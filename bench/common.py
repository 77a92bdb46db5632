"""What the benchmarks share: where the public benchmark data is, temporary folders, percentiles, ports."""
from __future__ import annotations

import atexit
import shutil
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED_EVAL = next((p for p in (ROOT.parent / "shared" / "eval", Path("/work/shared/eval")) if p.is_dir()),
                   ROOT.parent / "shared" / "eval")
SQUAD_DIR = SHARED_EVAL / "squad_v2_dev"


def temp_dir(prefix: str) -> str:
    """A temporary folder, removed when the benchmark exits."""
    folder = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, folder, True)
    return folder


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require(path: Path) -> None:
    """Stop with one line when the shared benchmark data is missing."""
    if not path.exists():
        sys.exit(f"error: the benchmark corpus is missing: {path} (../shared/eval beside the checkout)")


def jsonl_texts(path: Path, limit: int | None = None) -> list[str]:
    """The "text" field of the first `limit` rows (all by default) of a JSON-lines file."""
    import json
    from itertools import islice

    with path.open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in islice(f, limit)]


def squad_files(folder: Path, docs: int) -> Path:
    """The first `docs` SQuAD 2.0 dev paragraphs as one .txt file each, in folder/data."""
    import json

    data = folder / "data"
    data.mkdir()
    with (SQUAD_DIR / "corpus.jsonl").open(encoding="utf-8") as f:
        for _, line in zip(range(docs), f):
            row = json.loads(line)
            (data / f"{row['id']}.txt").write_text(row["text"] + "\n", encoding="utf-8")
    return data


def cpu_flags() -> str:
    """The CPU features the figures depend on (int8 is fast only with AVX-512 VNNI or AMX), and the core count."""
    import os

    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    wanted = ["avx2", "avx512f", "avx512_vnni", "amx_int8"]
    return " ".join(f for f in wanted if f in flags) + f", {os.cpu_count()} cpus"
