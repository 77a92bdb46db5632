"""Hardening: hostile documents (HTML/JS, huge lines, duplicates, symlinks) and faults (SIGKILL mid-build,
corrupt or missing index files, another model's index, a read-only index folder, a full disk).

Each fault must end in one clear stderr line and a non-zero exit from `python -m qa ...` (never a traceback),
with the previous live build still answering, and the next `python -m qa index` repairing what it can.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import DEFAULT_FILE, ROOT, run_qa, start_server, stop
from qa.assistant import Assistant
from qa.chunking import load_tokenizer
from qa.config import build_config
from qa.indexing import build_index, current_folder, load_index

CITY_QUESTION = "In which city is the Secretariat based?"
MODEL_WINDOW = 254  # word pieces the model reads, besides its two special tokens


# ---------------------------------------------------------------------------------------------- helpers


def assert_one_line_error(r: subprocess.CompletedProcess, *words: str) -> str:
    """A failed command: exit code 1, exactly one stderr line starting "error:", no traceback; returns it."""
    err = r.stderr.strip()
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.returncode == 1, (r.returncode, r.stderr[-3000:])
    assert len(err.splitlines()) == 1, f"expected one stderr line, got:\n{r.stderr[-3000:]}"
    assert err.startswith("error: "), err
    for w in words:
        assert w.lower() in err.lower(), (w, err)
    return err


def index_cli(data: Path, index: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_qa("index", "--data", str(data), "--index", str(index), "--quiet", *extra)


def ask_cli(index: Path, question: str = CITY_QUESTION) -> subprocess.CompletedProcess:
    return run_qa("ask", question, "--json", "--index", str(index))


def assert_answers(index: Path, question: str = CITY_QUESTION, words: str = "Vienna") -> dict:
    r = ask_cli(index, question)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert not out["abstained"] and words in out["answer"], out
    return out


def osce_data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(DEFAULT_FILE, folder / "osce_overview.txt")
    return folder


def mount(*args: str) -> None:
    r = subprocess.run(["mount", *args], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"these fault tests need mount (root; .ci/run runs as root): mount {' '.join(args)}: "
                    f"{r.stderr.strip()}; uid {os.getuid()}")


def umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True)


# ----------------------------------------------------------------------------------- hostile documents


HOSTILE = ('The hostile marker sentence is <script>window.pwned=1</script> '
           '<img src=x onerror="window.pwned=1"> <a href="javascript:window.pwned=1">click</a> here.')


def test_html_and_js_in_a_document_is_shown_as_text_and_never_runs(tmp_path, browser):
    data = tmp_path / "data"
    data.mkdir()
    (data / "hostile.txt").write_text("Harbour notes for the summer season.\n" + HOSTILE + "\n"
                                      "Boats must leave the harbour by nine in the evening.\n", encoding="utf-8")
    url, proc = start_server(tmp_path / "index", QA_DATA=str(data))
    try:
        page = browser.new_page()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url)
        page.locator("#qa-question textarea").wait_for()
        page.locator("#qa-question textarea").fill("What is the hostile marker sentence?")
        page.locator("#qa-question textarea").press("Enter")
        page.locator("#qa-sources .qa-source").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)  # the streamed answer completes; an <img onerror> would have fired by now
        chat = page.locator("#qa-chat").inner_text()
        sources = page.locator("#qa-sources").inner_text()
        assert "[1]" in chat, chat
        for shown in (chat, sources):  # the markup is visible as text
            assert "<script>window.pwned=1</script>" in shown, shown
            assert '<img src=x onerror="window.pwned=1">' in shown, shown
            assert '<a href="javascript:window.pwned=1">click</a>' in shown, shown
        assert page.evaluate("typeof window.pwned") == "undefined"
        # no element came out of the document's text
        for selector in ("#qa-chat script", "#qa-sources script", "img[onerror]", "img[src='x']",
                         "a[href^='javascript:']"):
            assert page.locator(selector).count() == 0, selector
        # the would-be link: if an element holds the word, clicking it must do nothing
        link = page.locator("#qa-sources").get_by_text("click", exact=False)
        if link.count():
            link.first.click()
            page.wait_for_timeout(300)
            assert page.evaluate("typeof window.pwned") == "undefined"
            tag = link.first.evaluate("e => e.tagName")
            assert tag.lower() != "a", tag
        assert page.evaluate("typeof window.pwned") == "undefined" and not dialogs
        page.close()
    finally:
        stop(proc)


DOCS_PAGE = """# Harbour handbook

## Night rotation

The harbour log is kept on the server. To rotate the harbour log every night, add this line to your crontab:

```sh
0 3 * * * /usr/local/bin/rotate-harbour-log --keep 14

# keep two weeks ![x](http://127.0.0.1:9/evil.png)
```

The hostile marker sentence is <script>window.pwned=1</script> <img src=x onerror="window.pwned=1"> here.

![map](https://example.com/map.png)
"""


def test_a_cited_code_block_is_shown_as_code_and_html_in_a_markdown_document_as_text(tmp_path, browser):
    data = tmp_path / "data"
    data.mkdir()
    (data / "handbook.md").write_text(DOCS_PAGE, encoding="utf-8")
    url, proc = start_server(tmp_path / "index", QA_DATA=str(data))
    try:
        page = browser.new_page()
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url)
        page.locator("#qa-collection").get_by_text("data").wait_for(timeout=30_000)  # names the collection
        assert "1 file" in page.locator("#qa-collection").inner_text()
        page.locator(".qa-example").first.wait_for(timeout=10_000)  # an example question from its headings
        example = page.locator(".qa-example").first.inner_text()
        assert "night rotation" in example.lower()
        box = page.locator("#qa-question textarea")
        box.fill("How do I rotate the harbour log every night?")
        box.press("Enter")
        page.locator("#qa-sources .qa-source").first.wait_for(timeout=30_000)
        code = page.locator("#qa-chat pre code")
        code.first.wait_for(timeout=10_000)
        assert "0 3 * * * /usr/local/bin/rotate-harbour-log --keep 14" in code.first.inner_text()
        assert "```" not in page.locator("#qa-chat").inner_text()
        assert "# keep two weeks ![x](http://127.0.0.1:9/evil.png)" in code.first.inner_text()  # code, not Markdown
        assert page.locator("#qa-chat h1, #qa-chat img, #qa-sources img").count() == 0
        assert "rotate-harbour-log" in page.locator("#qa-sources pre code").first.inner_text()
        assert page.locator("#qa-sources .qa-section").first.inner_text() == "Harbour handbook > Night rotation"
        box.fill("What is the hostile marker sentence?")
        box.press("Enter")
        page.locator("#qa-chat").get_by_text("window.pwned=1", exact=False).first.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)
        for shown in (page.locator("#qa-chat").inner_text(), page.locator("#qa-sources").inner_text()):
            assert "<script>window.pwned=1</script>" in shown, shown
        assert page.evaluate("typeof window.pwned") == "undefined"
        assert page.locator("img[onerror], #qa-chat script, #qa-sources script").count() == 0
        page.locator(".qa-example").first.click()  # an example is asked at once: it shows as the user's message
        page.locator("#qa-chat").get_by_text(example).first.wait_for(timeout=30_000)
        assert box.input_value() == ""
        assert not [r for r in requests if not r.startswith(url)], requests  # nothing loaded from elsewhere
        page.close()
        _check_the_light_chat_and_the_widget_render_the_same(browser, url)
    finally:
        stop(proc)


def _check_the_light_chat_and_the_widget_render_the_same(browser, url: str) -> None:
    """/embed (the widget's page, and the light chat while Gradio loads): the collection named, an example
    question from the headings that asks when clicked, the cited code as code, the document's HTML as text."""
    page = browser.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url + "embed")
    page.locator("#intro").get_by_text("data (1 file", exact=False).wait_for(timeout=30_000)
    example = page.locator("#examples .example").first
    assert "night rotation" in example.inner_text().lower()
    example.click()  # asks at once
    page.locator(".msg.bot pre code").first.wait_for(timeout=30_000)
    code = page.locator(".msg.bot .answer pre code").first.inner_text()
    assert "0 3 * * * /usr/local/bin/rotate-harbour-log --keep 14" in code
    assert "# keep two weeks ![x](http://127.0.0.1:9/evil.png)" in code  # code, not Markdown
    assert "```" not in page.locator("#log").inner_text()
    page.locator(".msg.bot .cite").first.click()  # [1] opens the sources, its passage marked
    page.locator(".qa-source mark").first.wait_for(timeout=5_000)
    assert "handbook.md line" in page.locator(".qa-source").first.inner_text()
    page.locator("#question").fill("What is the hostile marker sentence?")
    page.locator("#question").press("Enter")
    page.locator(".msg.bot").get_by_text("window.pwned=1", exact=False).first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    assert "<script>window.pwned=1</script>" in page.locator(".msg.bot").last.inner_text()
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.locator("#log script, #log img, #log a, #log h1").count() == 0
    assert not [r for r in requests if not r.startswith(url)], requests
    page.close()


def _words(seed: int, n: int, punctuation: bool) -> list[str]:
    words = DEFAULT_FILE.read_text(encoding="utf-8").split()
    if not punctuation:
        words = [w for w in (re.sub(r"[^\w-]", "", w) for w in words) if w]
    rng = random.Random(seed)
    return [rng.choice(words) for _ in range(n)]


def _check_long_document(tmp_path, embedder, text: str, question: str, expected: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "long.txt").write_text(text, encoding="utf-8")
    config = build_config({}, data_dir=data, index_dir=tmp_path / "index")
    t0 = time.perf_counter()
    report = build_index(config, embedder, warn=pytest.fail)
    built = time.perf_counter() - t0
    loaded = load_index(config)
    tokenizer = load_tokenizer(embedder.path)
    chunks = list(loaded.store.chunks.values())
    assert report.chunks == len(chunks) > 1
    sizes = [len(e.ids) for e in tokenizer.encode_batch([c.text for c in chunks], add_special_tokens=False)]
    assert max(sizes) <= MODEL_WINDOW, max(sizes)  # every chunk fits the model's window
    assert min(sizes) > 0
    for c in chunks:
        assert c.text == text[c.start:c.end] and c.line == 1
    covered = sorted((c.start, c.end) for c in chunks)  # the windows cover the whole line, without holes
    assert covered[0][0] == 0 and covered[-1][1] == len(text.rstrip())
    assert all(b[0] <= a[1] + 1 for a, b in zip(covered, covered[1:]))
    a = Assistant(config)
    a.embedder = embedder
    t0 = time.perf_counter()
    answer = a.ask(question)
    asked = time.perf_counter() - t0
    assert not answer.abstained and expected in answer.answer, answer
    assert built < 240 and asked < 10, (built, asked)
    print(f"{len(text)} chars, {len(chunks)} chunks (max {max(sizes)} word pieces), built in {built:.1f} s, "
          f"answered in {asked:.2f} s")


def test_a_quarter_megabyte_single_line_is_indexed_in_sane_chunks_and_answered(tmp_path, embedder):
    words = _words(1, 44_000, punctuation=True)
    words[22_000:22_000] = "The quokka vault combination is 4721.".split()
    text = " ".join(words)
    text = text[: 2**18 - 1] + "."
    assert "quokka vault combination is 4721." in text and "\n" not in text and len(text) >= 2**18 - 1
    _check_long_document(tmp_path, embedder, text, "What is the quokka vault combination?", "4721")


def test_20k_words_without_any_sentence_break_are_indexed_and_answered(tmp_path, embedder):
    words = _words(2, 20_000, punctuation=False)
    words[10_000:10_000] = "the quokka vault combination is fortyseventwentyone".split()
    text = " ".join(words)
    assert not re.search(r"[.!?\n]", text)
    _check_long_document(tmp_path, embedder, text, "What is the quokka vault combination?",
                         "fortyseventwentyone")


def test_300_duplicate_files_index_and_an_answer_cites_each_sentence_once(tmp_path, embedder):
    data = tmp_path / "data"
    data.mkdir()
    text = ("The lighthouse keeper feeds the gulls every morning at six. The lamp is cleaned on Fridays. "
            "Visitors may climb the tower on Sundays.\n")
    for i in range(300):
        (data / f"copy{i:03}.txt").write_text(text, encoding="utf-8")
    config = build_config({}, data_dir=data, index_dir=tmp_path / "index")
    report = build_index(config, embedder, warn=pytest.fail)
    assert report.files == 300 and report.chunks == 300
    a = Assistant(config)
    a.embedder = embedder
    answer = a.ask("When does the lighthouse keeper feed the gulls?")
    assert not answer.abstained and "six" in answer.answer, answer
    cited = [c.text for c in answer.citations]
    hits = a.search("When does the lighthouse keeper feed the gulls?", 5)
    print("citations:", [(c.source, c.text) for c in answer.citations], "| answer:", answer.answer,
          "| top-5 search texts distinct:", len({h.chunk.text for h in hits}))
    assert len(cited) < 5
    assert len(cited) == len(set(cited)), f"the same sentence is cited {len(cited)} times: {answer.answer!r}"


def test_symlinks_leading_outside_the_data_folder_are_never_indexed(tmp_path):
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    (outside / "secret.txt").write_text("The zebrafish password is tangerine.\n", encoding="utf-8")
    (outside / "folder" / "deep.md").write_text("The walrus vault opens at midnight.\n", encoding="utf-8")
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "inside.txt").write_text("The harbour closes at nine.\n", encoding="utf-8")
    (data / "sub" / "note.md").write_text("The ferry leaves at ten.\n", encoding="utf-8")
    os.symlink(outside / "secret.txt", data / "file_link.txt")  # a file outside
    os.symlink(outside / "folder", data / "dir_link")  # a folder outside
    os.symlink("..", data / "sub" / "up")  # a relative link back up and out
    os.symlink(data / "inside.txt", data / "alias.txt")  # a file inside
    os.symlink(data / "sub", data / "sub_alias")  # a folder inside
    index = tmp_path / "index"
    r = index_cli(data, index)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    folder = current_folder(index)
    files = set(json.loads((folder / "manifest.json").read_text())["files"])
    stored = (folder / "chunks.jsonl").read_text(encoding="utf-8")
    assert "zebrafish" not in stored and "walrus" not in stored
    assert not any(f.startswith(("file_link", "dir_link", "sub/up")) for f in files), files
    for q in ("What is the zebrafish password?", "When does the walrus vault open?"):
        out = json.loads(run_qa("search", q, "--json", "-k", "10", "--index", str(index)).stdout)
        assert not any("zebrafish" in h["text"] or "walrus" in h["text"] for h in out["hits"])
    print("indexed sources:", sorted(files))  # what a symlink inside the data folder gives
    assert {"inside.txt", "sub/note.md"} <= files


# ---------------------------------------------------------------------------------------------- faults


def _ledger(i: int) -> str:
    words = _words(100 + i, 60, punctuation=True)
    return f"Ledger {i} records a shipment. The code word of ledger {i} is kumquat{i}x. " + " ".join(words) + "\n"


def test_sigkill_mid_embedding_leaves_the_old_index_and_the_next_build_completes(tmp_path, embedder):
    data = osce_data(tmp_path / "data")
    index = tmp_path / "index"
    config = build_config({}, data_dir=data, index_dir=index)
    build_index(config, embedder, warn=pytest.fail)
    live = current_folder(index)
    for i in range(300):
        (data / f"ledger{i:03}.txt").write_text(_ledger(i), encoding="utf-8")
    log = (tmp_path / "build.log").open("w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    proc = subprocess.Popen([sys.executable, "-m", "qa", "index", "--data", str(data), "--index", str(index)],
                            cwd=ROOT, env=env, stdout=log, stderr=log)
    done = 0
    try:
        deadline = time.monotonic() + 120
        while done < 128:  # one encode group embedded, some more to go
            assert proc.poll() is None, f"the build ended before it could be killed: {(tmp_path / 'build.log').read_text()}"
            assert time.monotonic() < deadline, (tmp_path / "build.log").read_text()
            found = re.findall(r"(\d+)/(\d+) \[", (tmp_path / "build.log").read_text())
            done = int(found[-1][0]) if found else 0
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert current_folder(index) == live  # nothing half-made went live
    assert_answers(index)
    r = run_qa("search", "kumquat7x", "--json", "--index", str(index))
    assert r.returncode == 0 and not any("kumquat" in h["text"] for h in json.loads(r.stdout)["hits"])
    r = index_cli(data, index)  # the lock died with the process; this build completes
    assert r.returncode == 0, r.stderr[-3000:]
    assert "300 added" in r.stdout, r.stdout
    assert not [p for p in (index / "builds").iterdir() if p.name.startswith(".tmp-")]
    assert_answers(index, "What is the code word of ledger 217?", "kumquat217x")
    assert_answers(index)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A small index built by the command line, kept untouched: each fault test damages a copy."""
    root = tmp_path_factory.mktemp("pristine")
    data = osce_data(root / "data")
    r = index_cli(data, root / "index")
    assert r.returncode == 0, r.stderr
    return data, root / "index"


@pytest.fixture
def damaged(pristine, tmp_path):
    """(data, index, live build folder): a copy of the pristine index (its ONNX export hard-linked)."""
    data, source = pristine
    index = tmp_path / "index"
    shutil.copytree(source, index, ignore=shutil.ignore_patterns("encoders"))
    if (source / "encoders").is_dir():
        shutil.copytree(source / "encoders", index / "encoders", copy_function=os.link)
    return data, index, current_folder(index)


def _truncate(path: Path, keep) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[:keep(len(raw))])


def _edit_manifest(**changes):
    def edit(folder: Path) -> None:
        m = json.loads((folder / "manifest.json").read_text())
        m.update(changes)
        (folder / "manifest.json").write_text(json.dumps(m))
    return edit


def _first_chunk_line(replacement: str):
    def edit(folder: Path) -> None:
        lines = (folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        (folder / "chunks.jsonl").write_text(replacement + "\n" + "".join(lines[1:]), encoding="utf-8")
    return edit


DAMAGE = {
    "faiss-truncated-100-bytes": lambda f: _truncate(f / "vectors.faiss", lambda n: 100),
    "faiss-truncated-half": lambda f: _truncate(f / "vectors.faiss", lambda n: n // 2),
    "faiss-empty": lambda f: _truncate(f / "vectors.faiss", lambda n: 0),
    "faiss-missing": lambda f: (f / "vectors.faiss").unlink(),
    "manifest-garbage": lambda f: (f / "manifest.json").write_bytes(b"\x00garbage{{"),
    "manifest-list": lambda f: (f / "manifest.json").write_text("[1, 2, 3]"),
    "manifest-null": lambda f: (f / "manifest.json").write_text("null"),
    "manifest-string": lambda f: (f / "manifest.json").write_text('"a manifest"'),
    "manifest-empty-object": lambda f: (f / "manifest.json").write_text("{}"),
    "manifest-only-a-version": lambda f: (f / "manifest.json").write_text('{"format_version": 3}'),
    "manifest-wrong-types": _edit_manifest(chunk_count="many", dimension=[384]),
    "manifest-missing": lambda f: (f / "manifest.json").unlink(),
    "chunks-missing": lambda f: (f / "chunks.jsonl").unlink(),
    "chunks-empty": lambda f: _truncate(f / "chunks.jsonl", lambda n: 0),
    "chunks-truncated-mid-line": lambda f: _truncate(f / "chunks.jsonl", lambda n: n // 2),
    "chunks-binary-garbage": lambda f: (f / "chunks.jsonl").write_bytes(bytes(range(256)) * 4),
    "chunks-line-is-a-number": _first_chunk_line("42"),
    "chunks-line-is-a-list": _first_chunk_line("[1, 2]"),
    "chunks-line-missing-fields": _first_chunk_line('{"vid": 0}'),
    "sentences-missing": lambda f: (f / "sentences.npy").unlink(),
    "sentences-garbage": lambda f: (f / "sentences.npy").write_bytes(b"garbage"),
    "sentences-truncated": lambda f: _truncate(f / "sentences.npy", lambda n: n // 2),
    "bm25-folder-missing": lambda f: shutil.rmtree(f / "bm25"),
    "bm25-vocab-garbage": lambda f: (f / "bm25" / "vocab.index.json").write_text("garbage"),
    "bm25-params-missing": lambda f: (f / "bm25" / "params.index.json").unlink(),
    "bm25-ids-missing": lambda f: (f / "bm25" / "ids.npy").unlink(),
    "bm25-data-truncated": lambda f: _truncate(f / "bm25" / "data.csc.index.npy", lambda n: n // 2),
    "current-names-no-build": lambda f: (f.parent.parent / "CURRENT").write_text("builds/nothing-here\n"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_index_is_one_line_naming_the_rebuild_and_index_repairs_it(damaged, damage):
    data, index, folder = damaged
    DAMAGE[damage](folder)
    r = ask_cli(index)
    assert_one_line_error(r, f"rebuild it with: python -m qa index --data YOUR_TEXTS_FOLDER --index {index}")
    r = run_qa("search", "Vienna", "--index", str(index))
    assert_one_line_error(r, "rebuild it with: python -m qa index")
    r = index_cli(data, index)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "indexed 1 file" in r.stdout, r.stdout
    assert_answers(index)


INDEX_ONLY_DAMAGE = {  # a manifest of the wrong shape where `ask` does not look (the per-file table)
    "manifest-files-a-list": _edit_manifest(files=["osce_overview.txt"]),
    "manifest-files-null": _edit_manifest(files=None),
    "manifest-file-entry-a-string": _edit_manifest(files={"osce_overview.txt": "abc"}),
}


@pytest.mark.parametrize("damage", list(INDEX_ONLY_DAMAGE))
def test_index_over_a_manifest_of_the_wrong_shape_rebuilds_or_says_one_line(damaged, damage):
    data, index, folder = damaged
    INDEX_ONLY_DAMAGE[damage](folder)
    r = index_cli(data, index)
    if r.returncode != 0:
        assert_one_line_error(r, "rebuild")
        r = index_cli(data, index, "--full")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert_answers(index)


def test_an_index_built_with_another_model_is_a_clear_mismatch(damaged):
    data, index, folder = damaged
    _edit_manifest(model="bge-small-en-v1.5")(folder)
    r = ask_cli(index)
    assert_one_line_error(r, "was built with model 'bge-small-en-v1.5'", "this run uses 'all-MiniLM-L6-v2'",
                          "rebuild it with: python -m qa index")
    r = index_cli(data, index)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert_answers(index)


@pytest.fixture
def read_only_index(tmp_path):
    """A built index whose folder is a read-only bind mount (root ignores file modes and chattr is per file)."""
    data = osce_data(tmp_path / "data")
    index = tmp_path / "index"
    r = index_cli(data, index)
    assert r.returncode == 0, r.stderr
    mount("--bind", str(index), str(index))
    try:
        r = subprocess.run(["mount", "-o", "remount,bind,ro", str(index)], capture_output=True, text=True)
        if r.returncode:
            pytest.fail(f"cannot make a read-only bind mount: {r.stderr.strip()}")
        probe = index / "probe"
        with pytest.raises(OSError):
            probe.write_text("x")
        yield data, index
    finally:
        umount(index)


def test_asking_from_a_read_only_index_works(read_only_index):
    data, index = read_only_index
    assert_answers(index)


def test_serving_a_read_only_index_works(read_only_index):
    data, index = read_only_index
    try:
        url, proc = start_server(index, QA_DATA=str(data))
    except RuntimeError as e:
        pytest.fail(f"the server did not start on a read-only index: {e}")
    try:
        r = httpx.post(url + "api/ask", json={"question": CITY_QUESTION}, timeout=30)
        assert r.status_code == 200 and "Vienna" in r.json()["answer"], r.text
    finally:
        stop(proc)


def test_building_into_a_read_only_index_is_one_line(read_only_index):
    data, index = read_only_index
    (data / "new.md").write_text("The staff picnic is held in Graz.\n", encoding="utf-8")
    r = index_cli(data, index)
    assert_one_line_error(r, "read-only")
    assert_answers(index)  # the built index still answers


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mount("-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk))
    try:
        yield disk
    finally:
        umount(disk)


@pytest.mark.parametrize("free_kb", [64, 400, 975, 1010])  # full in vectors.faiss, sentences.npy, bm25/, manifest.json
def test_a_full_disk_during_a_build_is_one_line_and_the_previous_build_stays_live(tmp_path, small_disk, free_kb):
    data = osce_data(tmp_path / "data")
    index = small_disk / "index"
    r = index_cli(data, index)  # small: it fits (the ONNX export does not, and runs from the shared copy)
    assert r.returncode == 0, r.stderr[-3000:]
    live = current_folder(index)
    assert_answers(index)
    for i in range(150):  # about 150 chunks: vectors, sentences and text of several hundred KB
        (data / f"ledger{i:03}.txt").write_text(_ledger(i), encoding="utf-8")
    free = os.statvfs(small_disk)
    filler = small_disk / "filler"
    with filler.open("wb") as f:  # leave free_kb free
        f.write(b"\0" * max(0, free.f_bavail * free.f_frsize - free_kb * 1024))
    failed = index_cli(data, index)
    assert failed.returncode != 0, failed.stdout
    assert current_folder(index) == live  # no half-written build went live
    assert_answers(index)  # nothing lost
    r = run_qa("search", "kumquat7x", "--json", "--index", str(index))
    assert not any("kumquat" in h["text"] for h in json.loads(r.stdout)["hits"])
    assert_one_line_error(failed, "no space")
    filler.unlink()  # space again: the next build goes through
    r = index_cli(data, index)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "150 added" in r.stdout, r.stdout
    assert_answers(index, "What is the code word of ledger 117?", "kumquat117x")
