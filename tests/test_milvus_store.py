"""The Milvus store against a real Milvus Lite server (`milvus-lite server` on 127.0.0.1): the same
operations as FaissStore give the same results on the same chunks and vectors, the manifest round-trips,
and server-side BM25 finds chunks by their words."""
from __future__ import annotations

import numpy as np
import pytest

from qa.chunking import chunk_document, load_tokenizer, sentence_spans
from qa.milvus_store import MilvusStore, StoreUnavailable, collection_name
from qa.reading import read_corpus
from qa.store import FaissStore

from conftest import DEFAULT_DATA


@pytest.fixture(scope="module")
def corpus(embedder):
    tokenizer = load_tokenizer(embedder.path)
    chunks = [c for d in read_corpus(DEFAULT_DATA, print) for c in chunk_document(d, tokenizer, 60, 10)]
    vectors, sentences = embedder.encode_with_sentences([c.text for c in chunks],
                                                        [sentence_spans(c.text) for c in chunks])
    return chunks, vectors, sentences


def test_collection_names_come_from_the_index_name():
    assert collection_name("index") == "qa_index"
    assert collection_name("my-notes index!") == "qa_my_notes_index"


def test_the_same_operations_give_the_same_results_as_faiss(milvus, corpus, embedder):
    chunks, vectors, sentences = corpus
    faiss_store = FaissStore(384)
    faiss_store.add(chunks, vectors, sentences)
    store = MilvusStore(milvus, "qa_test_same", 384).open(create=True)
    assert store.add(chunks, vectors, sentences) == list(range(len(chunks)))
    store.flush()
    assert len(store) == len(chunks) > 5
    for question in ("Who directs the Secretariat?", "When was the Conflict Prevention Centre created?"):
        q = embedder.encode([question])
        theirs, ours = faiss_store.search_ids(q, 5), store.search_ids(q, 5)
        assert [i for _, i in ours] == [i for _, i in theirs]
        assert np.allclose([s for s, _ in ours], [s for s, _ in theirs], atol=1e-4)
        ids = [i for _, i in ours]
        assert np.allclose(store.similarities(q[0], ids), faiss_store.similarities(q[0], ids), atol=1e-4)
        for i in ids:
            assert store.chunk(i) == faiss_store.chunk(i)
            assert np.allclose(store.sentence_vectors(store.chunk(i)), faiss_store.sentence_vectors(faiss_store.chunk(i)),
                               atol=1e-3)


def test_removing_a_file_and_server_side_bm25(milvus, corpus):
    chunks, vectors, sentences = corpus
    store = MilvusStore(milvus, "qa_test_remove", 384).open(create=True)
    extra = [c.__class__(**{**c.__dict__, "id": c.id + "x", "source": "other.txt"}) for c in chunks[:2]]
    store.add(chunks, vectors, sentences)
    assert store.add(extra, vectors[:2], sentences[:2]) == [len(chunks), len(chunks) + 1]
    store.flush()
    assert store.remove_files(["other.txt"]) == 2
    store.flush()
    assert len(store) == len(chunks)
    assert store.bm25  # Milvus Lite 3.x supports full-text search
    top = store.lexical_top("Documentation Centre Prague", 3)
    assert top and "Prague" in store.chunk(top[0][1]).text


def test_the_manifest_round_trips_and_a_missing_collection_is_one_clear_error(milvus):
    store = MilvusStore(milvus, "qa_test_manifest", 384).open(create=True)
    assert store.read_manifest() is None
    big = {"model": "all-MiniLM-L6-v2", "files": {f"f{i}.txt": {"sha256": "a" * 64, "chunks": i} for i in range(3000)}}
    store.write_manifest(big)
    assert store.read_manifest() == big
    store.write_manifest({"model": "small"})
    assert store.read_manifest() == {"model": "small"}
    with pytest.raises(StoreUnavailable, match="has no collection 'qa_nothing_here'"):
        MilvusStore(milvus, "qa_nothing_here", 384).open()
    with pytest.raises(StoreUnavailable, match="cannot use Milvus at http://127.0.0.1:9"):
        MilvusStore("http://127.0.0.1:9", "qa_x", 384).open()
