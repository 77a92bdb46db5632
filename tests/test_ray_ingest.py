"""Ray Data ingestion (`qa index --engine ray`) on a local Ray cluster on 127.0.0.1: the same chunks and
vectors as the local engine, bad files reported the same way, into FAISS or Milvus, without hanging on
a 2-CPU machine (the embedding actors leave a CPU for the read tasks)."""
from __future__ import annotations

import json
import shutil

import numpy as np

from qa.config import build_config
from qa.indexing import load_index

from conftest import DEFAULT_FILE, free_port, run_qa


def make_data(folder):
    folder.mkdir()
    shutil.copy(DEFAULT_FILE, folder)
    (folder / "docs.jsonl").write_text('{"id": "a", "text": "Alpha is the first letter."}\n'
                                       '{"id": "b", "text": "Beta comes second. It follows alpha."}\n')
    (folder / "notes.md").write_text("# Notes\nThe archive opens at nine.\n\nIt closes at five.\n")
    (folder / "bad.txt").write_bytes(b"\x00\x01\x02 not text")
    return folder


def test_the_ray_engine_gives_the_same_index_as_the_local_engine(tmp_path):
    data = make_data(tmp_path / "data")
    local = run_qa("index", "--data", str(data), "--index", str(tmp_path / "local"), "--quiet")
    ray = run_qa("index", "--data", str(data), "--index", str(tmp_path / "ray"), "--engine", "ray", "--quiet",
                 timeout=600)
    assert local.returncode == ray.returncode == 0, ray.stderr
    assert "warning: skipped bad.txt: binary content, not text" in ray.stderr
    assert "indexed 3 files into" in ray.stdout and ray.stdout.split(" in ")[0] == local.stdout.split(" in ")[0]
    a = load_index(build_config({}, data_dir=data, index_dir=tmp_path / "local"))
    b = load_index(build_config({}, data_dir=data, index_dir=tmp_path / "ray"))
    assert a.manifest["files"] == b.manifest["files"]
    by_id = {c.id: (i, c) for i, c in b.store.chunks.items()}
    assert sorted(by_id) == sorted(c.id for c in a.store.chunks.values())
    for i, chunk in a.store.chunks.items():
        j, other = by_id[chunk.id]
        assert other == chunk
        assert np.allclose(a.store.index.reconstruct(i), b.store.index.reconstruct(j), atol=1e-5)
        assert np.allclose(a.store.sentence_vectors(chunk), b.store.sentence_vectors(other), atol=1e-3)
    answer = json.loads(run_qa("ask", "--index", str(tmp_path / "ray"), "--json", "When does the archive open?").stdout)
    assert answer["citations"][0]["source"] == "notes.md"


def test_the_ray_engine_writes_into_milvus(milvus, tmp_path):
    data = make_data(tmp_path / "data")
    args = ["--store", "milvus", "--milvus-uri", milvus, "--index", str(tmp_path / "ray_milvus")]
    r = run_qa("index", "--data", str(data), *args, "--engine", "ray", "--quiet", timeout=600)
    assert r.returncode == 0, r.stderr
    answer = json.loads(run_qa("ask", *args, "--json", "Who directs the Secretariat?").stdout)
    assert "Secretary General" in answer["answer"]


def test_an_unreachable_ray_address_is_one_clear_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("Some text to index.\n", encoding="utf-8")
    r = run_qa("index", "--data", str(data), "--index", str(tmp_path / "index"), "--engine", "ray",
               "--ray-address", f"127.0.0.1:{free_port()}", timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "error: cannot connect to the Ray cluster at 127.0.0.1:" in r.stderr and "refused" in r.stderr
