"""Each distinct encoder input is embedded once per build (qa/dedup.py), with the real packaged model: a
section two files share is encoded once, and the index equals one built encoding every chunk."""
from __future__ import annotations

import numpy as np
import pytest

from qa import indexing
from qa.assistant import Assistant
from qa.chunking import encoder_input
from qa.config import build_config
from qa.dedup import Reuse
from qa.indexing import build_index, load_index

SHARED = ("## Installing\n\nRun the installer from the release page, then open a new terminal so the tool is on "
          "your PATH. Check it with `tool --version`; it prints the version and the build date.\n\n")


def _write(data, n: int = 2) -> None:
    data.mkdir(exist_ok=True)
    for i in range(n):
        (data / f"guide{i}.md").write_text(
            f"# Guide\n\n{SHARED}## Topic {i}\n\nThis page of the guide is about topic {i} and its code word w{i}. "
            f"It says how the w{i} setting changes the output of the tool.\n", encoding="utf-8")


def _counting(embedder, monkeypatch) -> list[str]:
    embedded: list[str] = []
    original = embedder.encode_with_sentences
    monkeypatch.setattr(embedder, "encode_with_sentences",
                        lambda texts, spans, **kw: embedded.extend(texts) or original(texts, spans, **kw))
    return embedded


def _by_chunk(index):
    """{chunk id: (vector, unit vectors)} of a loaded index."""
    ids, vectors = index.store.vectors()
    return {index.store.chunks[int(i)].id: (v, index.store.sentences[int(i)]) for i, v in zip(ids, vectors)}


class _Off(Reuse):
    """A table that never matches: every chunk is encoded."""

    def __init__(self, store=None):
        super().__init__(None)

    @classmethod
    def of_live(cls, store, removing):
        return cls()


def _no_reuse(monkeypatch) -> None:
    monkeypatch.setattr(indexing, "Reuse", _Off)


def test_a_section_two_files_share_is_embedded_once(tmp_path, embedder, monkeypatch):
    _write(tmp_path / "data")
    config = build_config({}, data_dir=tmp_path / "data", index_dir=tmp_path / "index")
    embedded = _counting(embedder, monkeypatch)
    report = build_index(config, embedder, warn=pytest.fail)
    inputs = [encoder_input(c) for c in load_index(config).store.chunks.values()]
    shared = [t for t in inputs if "release page" in t]
    assert len(shared) == 2 and shared[0] == shared[1]  # the same encoder input, title and heading included
    assert len(embedded) == len(set(inputs)) == len(inputs) - 1
    assert sum("release page" in t for t in embedded) == 1
    assert report.chunks_reused == 1 and report.chunks == report.chunks_added == len(inputs)


def test_an_index_built_with_reuse_equals_one_that_encodes_everything(tmp_path, embedder, monkeypatch):
    # enough files for several encode groups (the first ones small, two in flight at once), each with the
    # shared section, and one file repeating another's whole text
    _write(tmp_path / "data", n=24)
    (tmp_path / "data" / "copy.md").write_text((tmp_path / "data" / "guide3.md").read_text(), encoding="utf-8")
    reused = build_config({}, data_dir=tmp_path / "data", index_dir=tmp_path / "reused")
    report = build_index(reused, embedder, warn=pytest.fail)
    assert report.chunks_reused == 23 + 2  # the shared section of 23 files, both chunks of the copy
    everything = build_config({}, data_dir=tmp_path / "data", index_dir=tmp_path / "everything")
    with monkeypatch.context() as m:
        _no_reuse(m)
        embedded = _counting(embedder, m)
        plain = build_index(everything, embedder, warn=pytest.fail)
        assert plain.chunks_reused == 0 and len(embedded) == plain.chunks == report.chunks
    a, b = _by_chunk(load_index(reused)), _by_chunk(load_index(everything))
    assert a.keys() == b.keys()
    for chunk_id, (vector, units) in a.items():
        assert np.array_equal(vector, b[chunk_id][0]) and np.array_equal(units, b[chunk_id][1]), chunk_id
    one, two = Assistant(reused), Assistant(everything)
    one.embedder = two.embedder = embedder
    for query in ("how do I install the tool", "code word w7", "topic 3", "version and build date"):
        assert [(h.chunk.id, h.score) for h in one.search(query, 8)] == \
            [(h.chunk.id, h.score) for h in two.search(query, 8)], query


def test_an_incremental_build_reuses_the_live_vectors_and_equals_a_full_one(tmp_path, embedder, monkeypatch):
    data = tmp_path / "data"
    _write(data, n=3)
    inc = build_config({}, data_dir=data, index_dir=tmp_path / "inc")
    build_index(inc, embedder, warn=pytest.fail)
    # a changed file keeps its shared section; a new file brings it once more and a section of its own
    (data / "guide1.md").write_text(f"# Guide\n\n{SHARED}## Topic 1\n\nTopic one is now about oranges.\n")
    (data / "new.md").write_text(f"# Guide\n\n{SHARED}## Later\n\nA new note about the moon.\n")
    embedded = _counting(embedder, monkeypatch)
    report = build_index(inc, embedder, warn=pytest.fail)
    assert report.incremental and (report.added, report.updated) == (1, 1)
    assert report.chunks_reused == 2 and not any("release page" in t for t in embedded)
    assert report.chunks_added == len(embedded) + report.chunks_reused
    full = build_config({}, data_dir=data, index_dir=tmp_path / "full")
    build_index(full, embedder, warn=pytest.fail, full=True)
    a, b = _by_chunk(load_index(inc)), _by_chunk(load_index(full))
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k][0], b[k][0]) and np.array_equal(a[k][1], b[k][1]) for k in a)
