"""Building and loading the index with the real model and FAISS: manifest, atomic swap, refusals."""
import json

import numpy as np
import pytest

from qa import indexing
from qa.assistant import Assistant
from qa.config import build_config
from qa.errors import EmptyCorpus, IndexBusy, IndexCorrupt, IndexMismatch, IndexMissing, IndexUnwritable
from qa.chunking import chunk_with_tokens, load_tokenizer
from qa.indexing import build_index, load_index
from qa.records import Document
from qa.store import FaissStore


@pytest.fixture
def tiny(tmp_path, embedder):
    data = tmp_path / "data"
    data.mkdir()
    (data / "fruit.txt").write_text("Apples are red or green. Bananas are yellow and curved.\n", encoding="utf-8")
    (data / "notes").mkdir()
    (data / "notes" / "space.md").write_text("# Space\nThe Moon orbits the Earth every 27 days.\n", encoding="utf-8")
    config = build_config({}, data_dir=data, index_dir=tmp_path / "index")
    return config


def manifest_path(config):
    return load_index(config).folder / indexing.MANIFEST_FILE


def test_build_writes_a_manifest_and_loads_back(tiny, embedder):
    report = build_index(tiny, embedder, warn=pytest.fail)
    assert (report.files, report.chunks) == (2, 2)
    loaded = load_index(tiny)
    m = loaded.manifest
    assert m["format_version"] == indexing.FORMAT_VERSION
    assert m["model"] == "all-MiniLM-L6-v2" and m["dimension"] == 384
    assert m["chunking"]["chunk_tokens"] == tiny.chunk_tokens
    assert set(m["files"]) == {"fruit.txt", "notes/space.md"}
    assert all(len(f["sha256"]) == 64 for f in m["files"].values())
    assert m["chunk_count"] == 2 and {"faiss-cpu", "onnxruntime", "tokenizers"} <= set(m["versions"])
    assert m["backend"] == "onnx-int8" and m["index_type"] == "flat"
    assert m["built_at"]
    hits = loaded.store.search(embedder.encode(["Which fruit is yellow?"]), 1)[0]
    assert hits[0][1].source == "fruit.txt"
    vectors = embedder.encode(["The Moon orbits the Earth every 27 days."])
    assert abs(np.linalg.norm(vectors[0]) - 1) < 1e-5 and vectors.dtype == np.float32


def test_a_failed_build_leaves_the_previous_index_live(tiny, embedder, monkeypatch):
    build_index(tiny, embedder, warn=pytest.fail)
    before = load_index(tiny)
    (tiny.data_dir / "fruit.txt").write_text("Cherries are small and red.\n", encoding="utf-8")

    def crash(self, folder):
        (folder / "vectors.faiss").write_bytes(b"half written")
        raise OSError("disk full")

    monkeypatch.setattr(FaissStore, "save", crash)
    with pytest.raises(IndexUnwritable, match="cannot write the new build .*: disk full; the previous build stays live"):
        build_index(tiny, embedder, warn=pytest.fail)
    assert not list((tiny.index_dir / "builds").glob(".tmp-*"))  # the half-written build is gone
    after = load_index(tiny)
    assert after.folder == before.folder
    assert [c.text for c in after.store.chunks.values()] == [c.text for c in before.store.chunks.values()]
    monkeypatch.undo()
    build_index(tiny, embedder, warn=pytest.fail)  # the next build clears the leftovers and goes live
    assert not list((tiny.index_dir / "builds").glob(".tmp-*"))
    assert "Cherries are small and red." in [c.text for c in load_index(tiny).store.chunks.values()]


def test_missing_index_names_the_command(tiny):
    with pytest.raises(IndexMissing, match="python -m qa index --data .* --index "):
        load_index(tiny)


@pytest.mark.parametrize("field,value,error,words", [
    ("model", "bge-small-en", IndexMismatch, "was built with model 'bge-small-en'"),
    ("format_version", 99, IndexMismatch, "format version 99"),
    ("chunk_count", 7, IndexCorrupt, "holds 2 chunks but its manifest says 7"),
])
def test_a_mismatched_manifest_is_refused_with_the_rebuild_command(tiny, embedder, field, value, error, words):
    build_index(tiny, embedder, warn=pytest.fail)
    path = manifest_path(tiny)
    m = json.loads(path.read_text())
    m[field] = value
    path.write_text(json.dumps(m))
    with pytest.raises(error, match=words) as info:
        load_index(tiny)
    assert "rebuild it with: python -m qa index" in str(info.value)


def test_a_dimension_that_disagrees_with_the_model_is_refused(tiny, embedder):
    build_index(tiny, embedder, warn=pytest.fail)
    path = manifest_path(tiny)
    m = json.loads(path.read_text())
    m["dimension"] = 768
    path.write_text(json.dumps(m))
    with pytest.raises(IndexCorrupt, match="dimension 384"):
        load_index(tiny)


def test_a_truncated_faiss_file_is_refused(tiny, embedder):
    build_index(tiny, embedder, warn=pytest.fail)
    faiss_file = load_index(tiny).folder / "vectors.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    with pytest.raises(IndexCorrupt, match="rebuild it with"):
        load_index(tiny)


def test_an_empty_data_folder_is_a_clear_error(tmp_path, embedder):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "empty.txt").write_text("")
    config = build_config({}, data_dir=tmp_path / "data", index_dir=tmp_path / "index")
    with pytest.raises(EmptyCorpus, match=r"no readable document \(.txt, .md, .rst"):
        build_index(config, embedder, warn=lambda m: None)


def test_a_second_concurrent_build_is_refused(tiny, embedder):
    tiny.index_dir.mkdir()
    with indexing._BuildLock(tiny.index_dir):
        with pytest.raises(IndexBusy, match="another build is running"):
            build_index(tiny, embedder, warn=pytest.fail)


def test_old_builds_are_pruned_to_the_live_and_previous_one(tiny, embedder):
    for _ in range(4):
        build_index(tiny, embedder, warn=pytest.fail, full=True)
    assert len(list((tiny.index_dir / "builds").iterdir())) == 2


def test_the_assistant_reloads_a_new_build(tiny, embedder):
    a = Assistant(tiny)
    a.embedder = embedder
    a.build(warn=pytest.fail)
    (tiny.data_dir / "cars.txt").write_text("The red car is parked in the garage.\n", encoding="utf-8")
    a.build(warn=pytest.fail)
    assert a.search("Where is the car parked?", 1)[0].chunk.source == "cars.txt"


def test_every_chunk_stores_one_vector_per_answer_unit(tiny, embedder):
    from qa.chunking import encoder_input
    from qa.chunking import unit_spans

    build_index(tiny, embedder, warn=pytest.fail)
    store = load_index(tiny).store
    for chunk in store.chunks.values():
        vectors = store.sentence_vectors(chunk)
        assert vectors.shape == (len(chunk.units), 384) and chunk.units
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-2)
    text = "Apples grow on trees in the orchard. The stock market fell sharply on Monday."
    doc = Document(source="t.txt", text=text, sha256="x")
    [(chunk, tokens)] = chunk_with_tokens(doc, load_tokenizer(embedder.path), 200, 40)
    assert [text[s:e] for s, e in chunk.units] == ["Apples grow on trees in the orchard.",
                                                   "The stock market fell sharply on Monday."]
    full = encoder_input(chunk)
    _, (sentences,) = embedder.encode_with_sentences([full], [unit_spans(chunk)])
    vector, (reused,) = embedder.encode_with_sentences([full], [unit_spans(chunk)], tokens=[tokens])
    assert np.array_equal(reused, sentences) and np.allclose(vector, embedder.encode([full]), atol=1e-6)
    scores = sentences.astype(np.float32) @ embedder.encode(["Why did share prices drop?", "Where do apples grow?"]).T
    assert scores[1, 0] > scores[0, 0] and scores[0, 1] > scores[1, 1]


def test_a_sentence_file_that_disagrees_is_refused(tiny, embedder):
    build_index(tiny, embedder, warn=pytest.fail)
    folder = load_index(tiny).folder
    np.save(folder / "sentences.npy", np.zeros((1, 384), dtype=np.float16))
    with pytest.raises(IndexCorrupt, match="sentences.npy"):
        load_index(tiny)


def test_an_incremental_build_equals_a_full_build(tmp_path, embedder, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(6):
        (data / f"f{i}.txt").write_text(f"File {i} is about topic {i}. " * (3 + i) + f"Its code word is w{i}.\n",
                                        encoding="utf-8")
    (data / "docs.jsonl").write_text('{"id": "a", "text": "Alpha is first."}\n{"id": "b", "text": "Beta next."}\n')
    inc = build_config({}, data_dir=data, index_dir=tmp_path / "inc")
    build_index(inc, embedder, warn=lambda m: None)
    (data / "f1.txt").write_text("File one now talks about oranges and Vienna.\n", encoding="utf-8")
    (data / "f2.txt").unlink()
    (data / "new.md").write_text("# New\nA new note about the moon.\n", encoding="utf-8")
    (data / "docs.jsonl").write_text('{"id": "a", "text": "Alpha is first."}\n{"id": "c", "text": "Gamma."}\n')

    embedded = []
    original = embedder.encode_with_sentences
    monkeypatch.setattr(embedder, "encode_with_sentences",
                        lambda texts, spans, **kw: embedded.extend(texts) or original(texts, spans, **kw))
    report = build_index(inc, embedder, warn=lambda m: None)
    assert (report.added, report.updated, report.removed, report.unchanged) == (1, 2, 1, 4)
    assert report.incremental and report.chunks_added == len(embedded) + report.chunks_reused > 0
    assert not any("topic 0" in t or "topic 3" in t for t in embedded)  # unchanged files were not embedded
    # the unchanged document of a changed .jsonl file keeps its vectors: its encoder input is not encoded again
    assert report.chunks_reused == 1 and not any("Alpha" in t for t in embedded)

    full = build_config({}, data_dir=data, index_dir=tmp_path / "full")
    build_index(full, embedder, warn=lambda m: None)
    a, b = load_index(inc), load_index(full)
    assert sorted(c.id for c in a.store.chunks.values()) == sorted(c.id for c in b.store.chunks.values())
    assert a.manifest["files"] == b.manifest["files"]
    one, two = Assistant(inc), Assistant(full)
    one.embedder = two.embedder = embedder
    for query in ("oranges", "code word w4", "moon", "Gamma", "topic 2", "Beta"):
        assert [h.chunk.id for h in one.search(query, 5)] == [h.chunk.id for h in two.search(query, 5)], query
        assert [round(h.score, 5) for h in one.search(query, 5)] == [round(h.score, 5) for h in two.search(query, 5)]


def test_a_skipped_file_is_known_to_the_build_and_changes_are_named(tiny, embedder):
    build_index(tiny, embedder, warn=lambda m: None)
    (tiny.data_dir / "empty.txt").write_text("")  # skipped by the build, but known to it
    assert build_index(tiny, embedder, warn=lambda m: None).skipped == 1
    assert not build_index(tiny, embedder, warn=lambda m: None).changed
    (tiny.data_dir / "new.md").write_text("A new note.", encoding="utf-8")
    first = sorted(p.name for p in tiny.data_dir.iterdir() if p.suffix == ".txt" and p.name != "empty.txt")[0]
    (tiny.data_dir / first).write_text("Changed text.", encoding="utf-8")
    (tiny.data_dir / "empty.txt").unlink()
    report = build_index(tiny, embedder, warn=pytest.fail)
    assert (report.added, report.updated, report.removed, report.unchanged) == (1, 1, 1, 1)


def test_a_build_with_nothing_live_hashes_each_file_as_it_reads_it(tiny, embedder, monkeypatch):
    """No hashing pass over the data folder before a full build (each file is read once); the manifest holds
    the same sha256 an incremental build compares, skipped files included, so the next build has nothing to do."""
    import hashlib

    (tiny.data_dir / "empty.txt").write_bytes(b"")
    (tiny.data_dir / "binary.txt").write_bytes(b"\x00\x01")
    monkeypatch.setattr(indexing, "data_hashes", lambda config: pytest.fail("hashed before reading"))
    report = build_index(tiny, embedder, warn=lambda m: None)
    assert report.skipped == 2 and report.files == 2
    monkeypatch.undo()
    files = json.loads(manifest_path(tiny).read_text())["files"]
    assert files == {s: {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "chunks": files[s]["chunks"]}
                     for s, p in indexing.list_files(tiny.data_dir)}
    assert [files[s]["chunks"] for s in ("binary.txt", "empty.txt")] == [0, 0]
    assert not build_index(tiny, embedder, warn=pytest.fail).changed


def test_a_file_skipped_while_it_was_being_written_is_read_once_it_is_complete(tiny, embedder):
    """The manifest keeps the hash of the bytes the build judged (empty), not of the file as it is after the
    build, or the next build would think it unchanged and never index it."""
    (tiny.data_dir / "late.txt").write_bytes(b"")

    def finish_the_copy(message: str) -> None:
        if "late.txt" in message:
            (tiny.data_dir / "late.txt").write_text("Owls hunt at night.\n", encoding="utf-8")

    assert build_index(tiny, embedder, warn=finish_the_copy).skipped == 1
    report = build_index(tiny, embedder, warn=pytest.fail)
    assert report.changed and report.updated == 1
    assert "late.txt" in {c.source for c in load_index(tiny).store.chunks.values()}


def test_a_file_with_a_hash_sign_in_its_name_is_its_own_file(tiny, embedder):
    """Only a .jsonl file's documents are FILE#ID; issue#1.txt and a#b.jsonl are files of those names."""
    (tiny.data_dir / "issue#1.txt").write_text("Ticket one is about printers.\n", encoding="utf-8")
    (tiny.data_dir / "a#b.jsonl").write_text('{"id": "x#1", "text": "Document x talks of kites."}\n')
    build_index(tiny, embedder, warn=pytest.fail)
    files = json.loads(manifest_path(tiny).read_text())["files"]
    assert files["issue#1.txt"]["chunks"] == 1 and files["a#b.jsonl"]["chunks"] == 1 and "issue" not in files
    (tiny.data_dir / "issue#1.txt").write_text("Ticket one is now about scanners.\n", encoding="utf-8")
    (tiny.data_dir / "a#b.jsonl").unlink()
    report = build_index(tiny, embedder, warn=pytest.fail)
    assert (report.updated, report.removed) == (1, 1)
    texts = {c.source: c.text for c in load_index(tiny).store.chunks.values()}
    assert texts["issue#1.txt"] == "Ticket one is now about scanners." and "a#b.jsonl#x#1" not in texts
    assert not build_index(tiny, embedder, warn=pytest.fail).changed


def test_a_build_with_one_encoder_thread_runs_one_text_at_a_time(tiny, embedder, monkeypatch):
    """Serving sets one thread per request: a build started by an upload must not take a second core."""
    import threading

    for i in range(30):
        (tiny.data_dir / f"f{i}.txt").write_text(f"File {i} says something about topic {i}.\n", encoding="utf-8")
    forward, lock, running, most = embedder._ready(), threading.Lock(), [0], [0]

    def counted(ids, mask):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return forward(ids, mask)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(embedder, "_forward", counted)
    threads = embedder.threads
    embedder.set_threads(1)
    try:
        build_index(tiny, embedder, warn=pytest.fail, full=True)
    finally:
        embedder.set_threads(threads)
    assert most[0] == 1
    embedder.set_threads(2)
    try:
        build_index(tiny, embedder, warn=pytest.fail, full=True)
    finally:
        embedder.set_threads(threads)
    assert most[0] == 2  # two workers


def test_full_rebuilds_everything_and_nothing_to_do_keeps_the_live_build(tiny, embedder):
    first = build_index(tiny, embedder, warn=lambda m: None)
    again = build_index(tiny, embedder, warn=lambda m: None)
    assert again.folder == first.folder and again.unchanged == 2 and again.chunks_added == 0 and not again.changed
    full = build_index(tiny, embedder, warn=lambda m: None, full=True)
    assert full.folder != first.folder and not full.incremental and full.chunks_added == full.chunks


def test_a_build_killed_at_any_moment_leaves_the_previous_index_serving(tmp_path, embedder):
    import json as _json
    import random
    import signal
    import subprocess
    import sys
    import time

    from conftest import DEFAULT_FILE, ROOT

    data = tmp_path / "data"
    data.mkdir()
    (data / "overview.txt").write_bytes(DEFAULT_FILE.read_bytes())
    words = DEFAULT_FILE.read_text(encoding="utf-8").split()
    rows = [_json.dumps({"id": f"p{i}", "text": " ".join(words[i % 300:i % 300 + 120]) + "."}) for i in range(150)]
    (data / "paragraphs.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")  # enough for a build of seconds
    config = build_config({}, data_dir=data, index_dir=tmp_path / "index")
    first = build_index(config, embedder, warn=lambda m: None)
    rng = random.Random(7)
    for delay in sorted(rng.uniform(0.3, 6.0) for _ in range(4)):
        proc = subprocess.Popen([sys.executable, "-m", "qa", "index", "--full", "--quiet", "--data", str(data),
                                 "--index", str(config.index_dir)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        loaded = load_index(config)  # whatever the moment, a complete build is live
        assert len(loaded.store) == first.chunks
        a = Assistant(config)
        a.embedder = embedder
        assert "Vienna" in a.ask("In which city is the Secretariat based?").answer
    again = build_index(config, embedder, warn=lambda m: None, full=True)  # the lock died with the process
    assert again.chunks == first.chunks
    assert not [p for p in (config.index_dir / "builds").iterdir() if p.name.startswith(".tmp-")]
    assert _json.loads((again.folder / "manifest.json").read_text())["chunk_count"] == first.chunks


def test_beyond_the_flat_limit_the_index_uses_inverted_lists_with_the_same_results(tmp_path, embedder):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(40):
        (data / f"f{i}.txt").write_text(f"Note {i}: the {['red', 'blue', 'green', 'grey'][i % 4]} box holds item {i}. "
                                        f"It was packed on day {i % 7}.\n", encoding="utf-8")
    flat = build_config({}, data_dir=data, index_dir=tmp_path / "flat")
    auto = build_config({}, data_dir=data, index_dir=tmp_path / "auto", flat_limit=30)
    build_index(flat, embedder, warn=pytest.fail)
    build_index(auto, embedder, warn=pytest.fail)
    a, b = load_index(flat), load_index(auto)
    assert (a.manifest["index_type"], b.manifest["index_type"]) == ("flat", "ivf") and b.store.kind == "ivf"
    queries = ["Which box is green?", "item 17", "packed on day 3"]
    one, two = Assistant(flat), Assistant(auto)
    one.embedder = two.embedder = embedder
    for q in queries:  # a small collection: every list is read, so inverted lists are exact
        assert [(h.chunk.id, round(h.score, 5)) for h in one.search(q, 5)] == \
            [(h.chunk.id, round(h.score, 5)) for h in two.search(q, 5)]
    (data / "f3.txt").unlink()
    (data / "f50.txt").write_text("Note 50: the golden box holds the crown.\n", encoding="utf-8")
    report = build_index(auto, embedder, warn=pytest.fail)  # incremental: removes and adds by id in the lists
    assert report.incremental and (report.added, report.removed) == (1, 1)
    two.reload()
    assert two.search("Which box holds the crown?", 1)[0].chunk.source == "f50.txt"
    assert "f3.txt" not in {c.source for c in load_index(auto).store.chunks.values()}
    forced = build_config({}, data_dir=data, index_dir=tmp_path / "auto", index_type="flat")
    assert build_index(forced, embedder, warn=pytest.fail).changed  # the type is re-checked on every build
    assert load_index(forced).manifest["index_type"] == "flat"


def test_inverted_lists_find_what_exact_search_finds_and_remove_by_id():
    from qa.records import Chunk
    from qa.store import FaissStore, ivf_lists

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((50, 384)).astype(np.float32)
    vectors = centres[rng.integers(0, 50, 6000)] + 0.3 * rng.standard_normal((6000, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [Chunk(id=f"c{i}", source=f"f{i % 60}.txt", start=0, end=1, line=1, text="x") for i in range(6000)]
    one = [np.zeros((1, 384), dtype=np.float16)] * 6000
    flat, ivf = FaissStore(384), FaissStore(384)
    flat.add(chunks, vectors, one)
    ivf.add(chunks, vectors, one)
    ivf.shape("ivf")
    lists = faiss_nlist(ivf)
    assert ivf.kind == "ivf" and lists == ivf_lists(6000) == 153 and ivf.index.nprobe < lists
    queries = vectors[:50] + 0.2 * rng.standard_normal((50, 384)).astype(np.float32)
    found = [len({i for _, i in ivf.search_ids(q[None], 10)} & {i for _, i in flat.search_ids(q[None], 10)})
             for q in queries]
    assert np.mean(found) / 10 >= 0.95
    assert ivf.remove_files(["f0.txt"]) == 100 and len(ivf) == 5900
    assert all(ivf.chunk(i).source != "f0.txt" for _, i in ivf.search_ids(vectors[:1], 10))
    ivf.shape("ivf")  # grown by less than fourfold: the lists stay
    assert faiss_nlist(ivf) == lists


def faiss_nlist(store) -> int:
    import faiss

    return faiss.downcast_index(store.index).nlist


def test_a_build_that_went_live_meanwhile_is_not_undone(tiny, embedder, monkeypatch):
    """Another process's build (an upload) goes live while this one hashes the data folder: this build starts
    again from that one, rather than dropping the file it added."""
    build_index(tiny, embedder, warn=pytest.fail)
    original = indexing.data_hashes

    def hashes_then_an_upload(config):
        found = original(config)
        monkeypatch.setattr(indexing, "data_hashes", original)
        (tiny.data_dir / "upload.txt").write_text("The upload says owls hunt at night.\n", encoding="utf-8")
        build_index(tiny, embedder, warn=pytest.fail)
        return found

    (tiny.data_dir / "mine.txt").write_text("Mine says foxes sleep by day.\n", encoding="utf-8")
    monkeypatch.setattr(indexing, "data_hashes", hashes_then_an_upload)
    build_index(tiny, embedder, warn=pytest.fail)
    assert {"upload.txt", "mine.txt"} <= {c.source for c in load_index(tiny).store.chunks.values()}


def test_bm25_built_from_tokens_worked_out_while_embedding_scores_as_from_the_texts():
    from qa.lexical import Bm25Index, tokenize

    texts = ["Apples are red.", "the of and", "Bananas are yellow; apples green.", "Apples are red.", ""]
    ids = [4, 7, 9, 10, 12]
    known = dict(zip(texts[1:3], tokenize(texts[1:3])))  # some known (one with only stopwords), some not
    plain, built = Bm25Index.build(texts, ids), Bm25Index.build(texts, ids, known=known)
    for query in ("apples", "yellow bananas", "red", "the"):
        assert np.array_equal(plain.scores(query), built.scores(query)), query
    assert built.top("apples", 5)[0] == plain.top("apples", 5)[0]


def test_an_index_with_another_bm25_tokenizer_is_refused_and_rebuilt_without_embedding_again(tiny, embedder,
                                                                                            monkeypatch):
    first = build_index(tiny, embedder, warn=pytest.fail)
    path = manifest_path(tiny)
    m = json.loads(path.read_text())
    m["lexical"] = "bm25s-en-snowball-v1"  # as the version before plain_words wrote it
    path.write_text(json.dumps(m))
    with pytest.raises(IndexMismatch, match="another lexical index") as info:
        load_index(tiny)
    assert "rebuild it with: python -m qa index" in str(info.value)
    encoded = []
    real = embedder.encode_with_sentences
    monkeypatch.setattr(embedder, "encode_with_sentences", lambda texts, *a, **k: (encoded.extend(texts),
                                                                                   real(texts, *a, **k))[1])
    again = build_index(tiny, embedder, warn=pytest.fail)
    assert again.changed and again.incremental and again.chunks_added == 0 and encoded == []  # vectors kept
    loaded = load_index(tiny)
    assert loaded.folder != first.folder and loaded.manifest["lexical"] == indexing.TOKENIZER
    assert len(loaded.lexical) == len(loaded.store) == first.chunks


def test_a_file_with_nothing_to_answer_from_is_named_as_skipped(tiny, embedder):
    build_index(tiny, embedder, warn=lambda m: None)
    (tiny.data_dir / "changes.rst").write_text(".. include:: ../CHANGES.rst\n", encoding="utf-8")
    warnings = []
    report = build_index(tiny, embedder, warn=warnings.append)
    assert report.skipped == 1 and report.changed
    assert warnings == ["skipped changes.rst: no text to index (only headings, links, directives or markup)"]
    assert not build_index(tiny, embedder, warn=pytest.fail).changed  # known to the build: nothing to do again


def test_a_qaignore_file_takes_what_it_names_out_of_the_index(tiny, embedder):
    build_index(tiny, embedder, warn=lambda m: None)
    first = sorted(p.name for p in tiny.data_dir.iterdir() if p.suffix == ".txt")[0]
    (tiny.data_dir / ".qaignore").write_text(f"# left out\n{first}\n", encoding="utf-8")
    report = build_index(tiny, embedder, warn=pytest.fail)
    assert report.removed == 1 and f".qaignore, left out: {first}" in report.unindexed
    assert first not in json.loads(manifest_path(tiny).read_text())["files"]
    (tiny.data_dir / ".qaignore").unlink()
    assert build_index(tiny, embedder, warn=pytest.fail).added == 1
