"""Encoder backends: torch, onnx and onnx-int8 give the same vectors (int8: nearly), the manifest records the
backend, queries use the index's backend, and the query path of an ONNX index never imports torch."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from qa.assistant import Assistant
from qa.config import ROOT, Config, build_config
from qa import onnx_export
from qa.embedding import Embedder
from qa.onnx_export import encoder_file
from qa.errors import IndexMismatch
from qa.indexing import current_folder

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


def test_float32_onnx_batches_give_each_text_the_vector_it_gets_alone(tmp_path):
    one = Embedder(backend="onnx", encoder_dir=tmp_path, shared_dir=SHARED)
    batched = Embedder(backend="onnx", encoder_dir=tmp_path, shared_dir=SHARED, onnx_batch=3)
    batched.warm_up()
    run, sizes = batched._forward, []
    batched._forward = lambda ids, mask: sizes.append(len(ids)) or run(ids, mask)
    assert np.abs(batched.encode(TEXTS) - one.encode(TEXTS)).max() < 1e-5  # padding is masked out
    assert sorted(sizes) == [1, 3]  # four texts: one run of three, one of one
    assert Embedder(backend="onnx-int8", encoder_dir=tmp_path, onnx_batch=8).onnx_batch == 1  # int8: never


def _count_exports(monkeypatch) -> list:
    made = []
    original = onnx_export.export_onnx
    monkeypatch.setattr(onnx_export, "export_onnx", lambda *a, **kw: made.append(a[1]) or original(*a, **kw))
    return made


def test_a_second_index_links_the_shared_export_instead_of_exporting_again(tmp_path, monkeypatch):
    made = _count_exports(monkeypatch)
    shared = tmp_path / "shared"
    first = Embedder(backend="onnx-int8", encoder_dir=tmp_path / "a", shared_dir=shared)
    first.warm_up()
    exported = encoder_file(shared, first.model_name, first.path, "onnx-int8")
    assert made == [exported] and first.encoder_path == encoder_file(tmp_path / "a", first.model_name, first.path,
                                                                     "onnx-int8")
    second = Embedder(backend="onnx-int8", encoder_dir=tmp_path / "b", shared_dir=shared)
    second.warm_up()
    assert made == [exported]  # not exported again: the index folder links the shared file
    assert first.encoder_path.stat().st_ino == second.encoder_path.stat().st_ino == exported.stat().st_ino
    assert exported.stat().st_nlink == 3  # one file on disk for the cache and both index folders
    assert np.array_equal(first.encode(TEXTS), second.encode(TEXTS))
    assert not list((tmp_path / "a").glob(".*tmp*")) and not list(shared.glob(".*tmp*"))
    (tmp_path / "c").mkdir()  # an index folder holding a copy (made before links): a link from its next start on
    copy = tmp_path / "c" / exported.name
    shutil.copyfile(exported, copy)
    Embedder(backend="onnx-int8", encoder_dir=tmp_path / "c", shared_dir=shared).warm_up()
    assert made == [exported] and copy.stat().st_ino == exported.stat().st_ino


def test_where_no_link_can_be_made_the_index_gets_a_copy(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    Embedder(backend="onnx-int8", encoder_dir=tmp_path / "a", shared_dir=shared).warm_up()
    made = _count_exports(monkeypatch)

    def refuse(*_):
        raise OSError(18, "Invalid cross-device link")  # EXDEV: the cache on another file system

    monkeypatch.setattr(onnx_export.os, "link", refuse)
    copied = Embedder(backend="onnx-int8", encoder_dir=tmp_path / "b", shared_dir=shared)
    copied.warm_up()
    exported = encoder_file(shared, copied.model_name, copied.path, "onnx-int8")
    assert not made and copied.encoder_path.stat().st_ino != exported.stat().st_ino
    assert copied.encoder_path.read_bytes() == exported.read_bytes()


def test_an_index_runs_without_its_shared_export_and_records_the_one_it_ran(tmp_path, monkeypatch):
    shutil.copytree(DEFAULT_DATA, tmp_path / "data")
    config = build_config({}, data_dir=tmp_path / "data", index_dir=tmp_path / "index", cache_dir=tmp_path / "cache")
    report = Assistant(config).build(warn=pytest.fail)
    manifest = json.loads((report.folder / "manifest.json").read_text())
    linked = config.index_dir / "encoders" / manifest["encoder"]["file"]
    shared = config.cache_dir / "encoders" / manifest["encoder"]["file"]
    assert linked.stat().st_ino == shared.stat().st_ino
    assert manifest["encoder"]["sha256"] == hashlib.sha256(linked.read_bytes()).hexdigest()
    made = _count_exports(monkeypatch)

    shutil.rmtree(config.cache_dir)  # the shared cache deleted: the index's own link runs, and seeds it again
    assert Assistant(config).ask("Who directs the Secretariat?").citations
    assert not made and shared.stat().st_ino == linked.stat().st_ino

    moved = build_config({}, data_dir=config.data_dir, index_dir=tmp_path / "moved", cache_dir=tmp_path / "other")
    shutil.copytree(config.index_dir, moved.index_dir)  # another machine: real copies, an empty cache
    assert Assistant(moved).ask("Who directs the Secretariat?").citations
    assert not made and (moved.cache_dir / "encoders" / linked.name).is_file()

    shutil.rmtree(moved.cache_dir)  # moved without its export, onto a machine without one: exported there
    shutil.rmtree(moved.index_dir / "encoders")
    assert Assistant(moved).ask("Who directs the Secretariat?").citations
    assert made == [moved.cache_dir / "encoders" / linked.name]
    (moved.data_dir / "more.txt").write_text("The Secretariat has its seat in Vienna.\n", encoding="utf-8")
    again = Assistant(moved).build(warn=pytest.fail)
    assert again.incremental and again.chunks_added == 1  # the same export (the same bytes): the build extends

    live = again.folder / "manifest.json"  # vectors of another export (other library versions, say) are not mixed
    live.write_text(json.dumps({**json.loads(live.read_text()), "encoder": {"file": linked.name, "sha256": "0" * 64}}))
    (moved.data_dir / "more.txt").write_text("The Secretariat has its seat in Vienna, Austria.\n", encoding="utf-8")
    assert not Assistant(moved).build(warn=pytest.fail).incremental


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
