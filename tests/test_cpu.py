"""The encoder chosen for the machine when none is asked for: int8 where the CPU has int8 dot products, else the
faster of the two ONNX exports as timed on this machine (calibration.py, once per machine)."""
from __future__ import annotations

import json

import pytest

from conftest import DEFAULT_DATA, run_qa
from qa import calibration
from qa.calibration import RECORD_FILE, Timing, decide, new_index_choice
from qa.config import DEFAULT_MODEL, Config
from qa.cpu import choose_backend
from qa.indexing import new_index_backend
from qa.onnx_export import link_or_copy


def test_int8_only_with_int8_dot_product_instructions():
    assert choose_backend(frozenset({"avx2", "avx512f", "avx512_vnni"})).backend == "onnx-int8"
    assert choose_backend(frozenset({"avx2", "avx_vnni"})).backend == "onnx-int8"
    assert choose_backend(frozenset({"fp", "asimd", "asimddp"})).backend == "onnx-int8"  # ARM with dot product
    avx2 = choose_backend(frozenset({"sse4_2", "avx", "avx2", "fma"}))
    assert avx2.backend == "onnx" and "timed" in avx2.reason  # provisional: calibration.py times the two
    assert choose_backend(frozenset()).backend == "onnx"  # unknown (no /proc/cpuinfo): float32, fast everywhere


def test_a_new_index_says_which_encoder_it_chose_and_why(tmp_path):
    first = run_qa("index", "--data", str(DEFAULT_DATA), "--index", str(tmp_path / "index"), "--quiet")
    choice = new_index_backend(Config(device="cpu"))  # what this machine's shared cache says (timed once, where it must be)
    assert first.returncode == 0, first.stderr
    assert f"encoder: {choice.backend}, chosen for this machine: {choice.reason}" in first.stdout
    again = run_qa("index", "--data", str(DEFAULT_DATA), "--index", str(tmp_path / "index"), "--quiet", "--full")
    assert again.returncode == 0 and "encoder:" not in again.stdout  # an index keeps its encoder: nothing chosen
    asked = run_qa("index", "--data", str(DEFAULT_DATA), "--index", str(tmp_path / "other"), "--quiet",
                   "--backend", "onnx")
    assert asked.returncode == 0 and "encoder:" not in asked.stdout  # asked for, not chosen


def test_int8_is_chosen_only_when_timed_clearly_faster():
    fast = decide(Timing(30.0, 9.5), Timing(48.0, 5.5))  # an AVX2-only AMD EPYC (bench/bench_encoders.py)
    assert fast.backend == "onnx-int8" and "48.0 texts/s against float32 30.0 (1.60x)" in fast.reason
    same = decide(Timing(22.0, 9.0), Timing(20.9, 8.8))  # the AVX2-only machine of issue 18: no faster
    assert same.backend == "onnx" and "0.95x" in same.reason and "more accurate" in same.reason
    assert decide(Timing(30.0, 5.0), Timing(48.0, 6.0)).backend == "onnx"  # slower on one question: not chosen
    assert decide(Timing(30.0, 9.0), Timing(35.0, 5.0)).backend == "onnx"  # 1.17x: under the margin


def test_the_encoders_are_timed_once_per_machine_and_the_record_kept(tmp_path, monkeypatch):
    shared = tmp_path / "encoders"
    shared.mkdir()
    for export in (Config().cache_dir / "encoders").glob("*.onnx"):  # this machine's exports, if made: not again
        link_or_copy(export, shared / export.name)
    monkeypatch.setattr(calibration, "machine_backend", lambda: choose_backend(frozenset({"avx2", "fma"})))
    said = []
    choice = new_index_choice(DEFAULT_MODEL, shared, notice=said.append)
    assert said and "timing" in said[0]
    (record,) = json.loads((shared / RECORD_FILE).read_text())["machines"].values()
    timed = {b: Timing(record[b]["texts_per_second"], record[b]["question_ms"]) for b in ("onnx", "onnx-int8")}
    assert all(t.texts_per_second > 0 and t.question_ms > 0 for t in timed.values())
    assert choice.backend == record["backend"] == decide(timed["onnx"], timed["onnx-int8"]).backend
    assert len(list(shared.glob("*-onnx.onnx"))) == len(list(shared.glob("*-onnx-int8.onnx"))) == 1  # both timed

    def no_timing(*_args):
        raise AssertionError("timed again")

    monkeypatch.setattr(calibration, "time_backends", no_timing)
    assert new_index_choice(DEFAULT_MODEL, shared, notice=pytest.fail) == choice  # the record answers
    other = json.loads((shared / RECORD_FILE).read_text())
    other["machines"] = {"another CPU|0|onnxruntime 0|model": record}  # a cache moved from another machine
    (shared / RECORD_FILE).write_text(json.dumps(other))
    with pytest.raises(AssertionError, match="timed again"):
        new_index_choice(DEFAULT_MODEL, shared)


def test_with_int8_dot_products_nothing_is_timed(tmp_path, monkeypatch):
    monkeypatch.setattr(calibration, "machine_backend", lambda: choose_backend(frozenset({"avx2", "avx512_vnni"})))
    monkeypatch.setattr(calibration, "time_backends", pytest.fail)
    assert new_index_choice(DEFAULT_MODEL, tmp_path).backend == "onnx-int8"
    assert not (tmp_path / RECORD_FILE).exists()
