"""The encoder chosen for the machine when none is asked for: int8 only where the CPU has int8 dot products."""
from __future__ import annotations

from conftest import DEFAULT_DATA, run_qa
from qa.cpu import choose_backend, machine_backend


def test_int8_only_with_int8_dot_product_instructions():
    assert choose_backend(frozenset({"avx2", "avx512f", "avx512_vnni"})).backend == "onnx-int8"
    assert choose_backend(frozenset({"avx2", "avx_vnni"})).backend == "onnx-int8"
    assert choose_backend(frozenset({"fp", "asimd", "asimddp"})).backend == "onnx-int8"  # ARM with dot product
    avx2 = choose_backend(frozenset({"sse4_2", "avx", "avx2", "fma"}))
    assert avx2.backend == "onnx" and "no faster" in avx2.reason
    assert choose_backend(frozenset()).backend == "onnx"  # unknown (no /proc/cpuinfo): float32, fast everywhere


def test_a_new_index_says_which_encoder_it_chose_and_why(tmp_path):
    first = run_qa("index", "--data", str(DEFAULT_DATA), "--index", str(tmp_path / "index"), "--quiet")
    choice = machine_backend()
    assert first.returncode == 0, first.stderr
    assert f"encoder: {choice.backend}, chosen for this machine: {choice.reason}" in first.stdout
    again = run_qa("index", "--data", str(DEFAULT_DATA), "--index", str(tmp_path / "index"), "--quiet", "--full")
    assert again.returncode == 0 and "encoder:" not in again.stdout  # an index keeps its encoder: nothing chosen
    asked = run_qa("index", "--data", str(DEFAULT_DATA), "--index", str(tmp_path / "other"), "--quiet",
                   "--backend", "onnx")
    assert asked.returncode == 0 and "encoder:" not in asked.stdout  # asked for, not chosen
