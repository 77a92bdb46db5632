"""--device: builds on a CUDA GPU with the torch encoder where torch can use one; the CPU everywhere else."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import DEFAULT_DATA, DEFAULT_FILE, run_qa
from qa.cpu import build_device, cuda_available


def test_auto_builds_on_a_gpu_only_where_torch_can_use_one():
    assert build_device("cpu") == "cpu" and build_device("cuda") == "cuda"
    assert build_device("auto") == ("cuda" if cuda_available() else "cpu")


def test_asking_for_a_gpu_that_is_not_there_is_one_clear_line(tmp_path):
    if cuda_available():
        pytest.skip("a CUDA GPU is usable here, so the message for its absence cannot be checked")
    r = run_qa("index", "--data", str(DEFAULT_DATA), "--index", str(tmp_path / "index"), "--device", "cuda")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "torch cannot use a CUDA GPU" in r.stderr, r.stderr
    r = run_qa("index", "--data", str(DEFAULT_DATA), "--index", str(tmp_path / "index"), "--device", "cuda",
               "--backend", "onnx")
    assert r.returncode == 2 and "runs the torch encoder, not onnx" in r.stderr
    assert not (tmp_path / "index" / "CURRENT").exists()  # nothing half-built


@pytest.mark.skipif(not cuda_available(), reason="no CUDA GPU usable by torch here: the GPU build path did not run")
def test_a_gpu_build_gives_the_cpu_torch_vectors_and_serves_on_the_cpu(tmp_path):
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
