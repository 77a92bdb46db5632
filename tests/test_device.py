"""--device: builds on a CUDA GPU with the torch encoder where torch can use one; the CPU everywhere else."""
from __future__ import annotations

import json
import warnings

import numpy as np

from conftest import DEFAULT_DATA, DEFAULT_FILE, run_qa
from qa.cpu import build_device, cuda_available


def test_auto_builds_on_a_gpu_only_where_torch_can_use_one():
    assert build_device("cpu") == "cpu" and build_device("cuda") == "cuda"
    assert build_device("auto") == ("cuda" if cuda_available() else "cpu")


def test_the_gpu_path_where_there_is_a_gpu_and_one_clear_line_where_there_is_none(tmp_path):
    """Runs on every machine: with a CUDA GPU, the GPU build; without, the message for asking for one (and a
    warning in the test summary saying that the GPU build did not run here)."""
    if cuda_available():
        _gpu_build_gives_the_cpu_torch_vectors_and_serves_on_the_cpu(tmp_path)
        return
    warnings.warn("no CUDA GPU usable by torch here: the GPU build path did not run (bench/gpu_check.py runs it "
                  "on a CUDA machine)")
    r = run_qa("index", "--data", str(DEFAULT_DATA), "--index", str(tmp_path / "index"), "--device", "cuda")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "torch cannot use a CUDA GPU" in r.stderr, r.stderr
    r = run_qa("index", "--data", str(DEFAULT_DATA), "--index", str(tmp_path / "index"), "--device", "cuda",
               "--backend", "onnx")
    assert r.returncode == 2 and "runs the torch encoder, not onnx" in r.stderr
    assert not (tmp_path / "index" / "CURRENT").exists()  # nothing half-built


def _gpu_build_gives_the_cpu_torch_vectors_and_serves_on_the_cpu(tmp_path) -> None:
    from qa.embedding import Embedder

    texts = [p for p in DEFAULT_FILE.read_text(encoding="utf-8").split("\n") if p.strip()] * 20
    gpu = Embedder(backend="torch", device="cuda").encode(texts)
    cpu = Embedder(backend="torch").encode(texts)
    assert np.abs(gpu - cpu).max() < 1e-4
    r = run_qa("index", "--data", str(DEFAULT_DATA), "--index", str(tmp_path / "index"), env={"QA_DEVICE": "auto"})
    assert r.returncode == 0 and "encoder: torch" in r.stdout and "CUDA GPU" in r.stdout, r.stdout + r.stderr
    build = tmp_path / "index" / (tmp_path / "index" / "CURRENT").read_text(encoding="utf-8").strip()
    assert json.loads((build / "manifest.json").read_text(encoding="utf-8"))["backend"] == "torch"
    asked = run_qa("ask", "Who directs the Secretariat?", "--index", str(tmp_path / "index"))
    assert asked.returncode == 0 and "Secretary General" in asked.stdout
