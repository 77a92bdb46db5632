"""Encoder backends: torch, onnx and onnx-int8 give the same vectors (int8: nearly), the manifest records the
backend, queries use the index's backend, and the query path of an ONNX index never imports torch."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from qa.assistant import Assistant
from qa.config import ROOT, Config, build_config
from qa.embedding import Embedder, encoder_file
from qa.errors import IndexMismatch
from qa.indexing import build_index, current_folder

from conftest import DEFAULT_DATA, run_qa

TEXTS = ["Who directs the Secretariat?", "Borders are the first lines of a country's defence. " * 30, "é",
         "The Conflict Prevention Centre supports the Chairmanship in early warning and crisis management."]
SHARED = Config().cache_dir / "encoders"


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    e = Embedder(backend="torch")
    e.warm_up()
    return e


def test_the_torch_backend_equals_sentence_transformers(torch_embedder):
    from sentence_transformers import SentenceTransformer

    theirs = SentenceTransformer(str(torch_embedder.path), device="cpu").encode(TEXTS, normalize_embeddings=True)
    assert np.abs(torch_embedder.encode(TEXTS) - theirs).max() < 1e-5


@pytest.mark.parametrize("backend,min_cosine", [("onnx", 0.99999), ("onnx-int8", 0.97)])
def test_onnx_backends_agree_with_torch(torch_embedder, tmp_path, backend, min_cosine):
    e = Embedder(backend=backend, encoder_dir=tmp_path, shared_dir=SHARED)
    cosines = (e.encode(TEXTS) * torch_embedder.encode(TEXTS)).sum(axis=1)
    assert cosines.min() >= min_cosine, cosines
    spans = [[(0, 10), (10, len(t))] for t in TEXTS]
    _, ours = e.encode_with_sentences(TEXTS, spans)
    _, theirs = torch_embedder.encode_with_sentences(TEXTS, spans)
    for a, b in zip(ours, theirs):
        assert (a.astype(np.float32) * b.astype(np.float32)).sum(axis=1).min() >= min_cosine - 0.01


def test_the_export_is_made_once_and_kept_beside_the_index(tmp_path):
    shared = tmp_path / "shared"
    first = Embedder(backend="onnx-int8", encoder_dir=tmp_path / "a", shared_dir=shared)
    first.warm_up()
    made = encoder_file(tmp_path / "a", first.model_name, first.path, "onnx-int8")
    exported = encoder_file(shared, first.model_name, first.path, "onnx-int8")
    assert made.is_file() and exported.is_file() and made.read_bytes() == exported.read_bytes()
    stamp = exported.stat().st_mtime_ns
    second = Embedder(backend="onnx-int8", encoder_dir=tmp_path / "b", shared_dir=shared)
    second.warm_up()  # copied, not exported again
    assert exported.stat().st_mtime_ns == stamp
    assert np.allclose(first.encode(TEXTS), second.encode(TEXTS))
    assert not list((tmp_path / "a").glob(".*tmp*")) and not list(shared.glob(".*tmp*"))


def _config(tmp_path, **kw):
    return build_config({}, data_dir=DEFAULT_DATA, index_dir=tmp_path / "index", cache_dir=ROOT / ".cache", **kw)


def test_queries_use_the_backend_the_index_was_built_with(tmp_path):
    built = Assistant(_config(tmp_path, backend="torch"))
    built.build(warn=pytest.fail)
    manifest = json.loads((current_folder(tmp_path / "index") / "manifest.json").read_text())
    assert manifest["backend"] == "torch" and "torch" in manifest["versions"]
    reader = Assistant(_config(tmp_path))  # no backend asked for: the index's
    assert reader.ask("Who directs the Secretariat?").citations
    assert reader.embedder.backend == "torch"
    with pytest.raises(IndexMismatch, match="built with the torch encoder, this run asks for onnx.*--backend onnx$"):
        Assistant(_config(tmp_path, backend="onnx")).ask("Who directs the Secretariat?")


def test_another_backend_rebuilds_everything_and_is_recorded(tmp_path):
    report = Assistant(_config(tmp_path)).build(warn=pytest.fail)
    assert json.loads((report.folder / "manifest.json").read_text())["backend"] == "onnx-int8"
    again = Assistant(_config(tmp_path)).build(warn=pytest.fail)
    assert not again.changed
    switched = Assistant(_config(tmp_path, backend="onnx")).build(warn=pytest.fail)
    assert switched.changed and not switched.incremental and switched.chunks == report.chunks
    assert json.loads((switched.folder / "manifest.json").read_text())["backend"] == "onnx"


def test_the_cli_query_path_of_an_onnx_index_never_imports_torch(tmp_path):
    r = run_qa("index", "--index", str(tmp_path / "index"), "--quiet")
    assert r.returncode == 0, r.stderr
    code = ("import sys; from qa.cli import main; rc = main(['ask', '--index', sys.argv[1], "
            "'Who directs the Secretariat?']); print('torch' in sys.modules, 'sentence_transformers' in sys.modules); "
            "sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "index")], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Secretary General" in r.stdout and r.stdout.strip().endswith("False False")


def test_an_unknown_backend_is_a_usage_error(tmp_path):
    r = run_qa("index", "--index", str(tmp_path / "index"), "--backend", "tensorrt")
    assert r.returncode == 2 and "invalid choice: 'tensorrt'" in r.stderr
    r = run_qa("ask", "--index", str(tmp_path / "index"), "hi", env={"QA_BACKEND": "gpu"})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "backend must be one of" in r.stderr
