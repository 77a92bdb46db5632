"""Benchmark: from `pip install` to the first answer, as a new user of the package gets it.

    python bench/bench_install.py

In a fresh virtual environment: `pip install -r requirements.txt .` (the tested set; wheels come from pip's
cache, and /opt/wheels where this machine keeps the CPU torch), then, in a new folder holding data/ with the
default corpus, `qa index` and `qa ask "..."`. Prints the seconds of each step and the total. The ONNX export
is made in this run (a new user's first index makes it too).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, cpu_flags, temp_dir  # noqa: E402


def _timed(what: str, command: list[str], **kwargs) -> float:
    t = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    seconds = time.perf_counter() - t
    if done.returncode:
        sys.exit(f"error: {what} failed ({done.returncode}): {(done.stderr or done.stdout)[-2000:]}")
    print(f"{what:<36} {seconds:7.1f} s", flush=True)
    return seconds


def main() -> None:
    work = Path(temp_dir("bench-install-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_") and k != "VIRTUAL_ENV"}
    if Path("/opt/wheels").is_dir():
        env.setdefault("PIP_FIND_LINKS", "/opt/wheels")
    print(f"cpu: {cpu_flags()}")
    t = time.perf_counter()
    venv.create(work / "venv", with_pip=True)
    print(f"{'python -m venv':<36} {time.perf_counter() - t:7.1f} s", flush=True)
    py = str(work / "venv" / "bin" / "python")
    total = time.perf_counter() - t
    total += _timed("pip install -r requirements.txt .", [py, "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", "-r", str(ROOT / "requirements.txt"), str(ROOT)], env=env)
    folder = work / "my-docs"
    (folder / "data").mkdir(parents=True)
    shutil.copy(ROOT / "data" / "osce_overview.txt", folder / "data")
    qa = str(work / "venv" / "bin" / "qa")
    total += _timed("qa index", [qa, "index", "--quiet"], cwd=folder, env=env)
    total += _timed('qa ask "Who directs the Secretariat?"', [qa, "ask", "Who directs the Secretariat?"],
                    cwd=folder, env=env)
    print(f"{'total: install to first answer':<36} {total:7.1f} s")


if __name__ == "__main__":
    main()
