"""The command line in fresh processes: JSON shapes, --batch, and one-line errors with exit codes."""
import json

import pytest

from conftest import DEFAULT_DATA, run_qa


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory):
    index = tmp_path_factory.mktemp("cli-index")
    result = run_qa("index", "--data", str(DEFAULT_DATA), "--index", str(index))
    assert result.returncode == 0, result.stderr
    assert "indexed 1 file into" in result.stdout
    assert "Indexing" in result.stderr and "1/1" in result.stderr  # the progress bar, its total known (files)
    return index


def test_indexing_again_with_nothing_changed_says_so(cli_index):
    r = run_qa("index", "--data", str(DEFAULT_DATA), "--index", str(cli_index))
    assert r.returncode == 0 and r.stdout.startswith("nothing changed since the last build: 1 file, ")


def test_search_json_shape(cli_index):
    r = run_qa("search", "Where is the Secretariat based?", "-k", "2", "--json", "--index", str(cli_index))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["query"] == "Where is the Secretariat based?"
    assert len(out["hits"]) == 2
    hit = out["hits"][0]
    assert set(hit) == {"rank", "score", "chunk_id", "source", "section", "start", "end", "text"}
    text = (DEFAULT_DATA / hit["source"]).read_text(encoding="utf-8")
    assert text[hit["start"]:hit["end"]] == hit["text"]


def test_ask_json_shape_and_text_output(cli_index):
    r = run_qa("ask", "Who directs the Secretariat?", "--json", "--index", str(cli_index))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {"question", "answer", "abstained", "citations"} <= set(out)
    assert out["abstained"] is False and "[1]" in out["answer"]
    c = out["citations"][0]
    assert {"n", "source", "start", "end", "text", "passage", "score"} <= set(c)
    assert "Secretary General" in c["text"]
    r = run_qa("ask", "Who directs the Secretariat?", "--index", str(cli_index))
    assert "[1] osce_overview.txt, line 1, characters 0-" in r.stdout  # the sentence (with the one leaning on it)


def test_batch_from_stdin_prints_one_json_line_each(cli_index):
    r = run_qa("ask", "--batch", "-", "--index", str(cli_index),
               stdin="Who directs the Secretariat?\n\nWhat is the boiling point of mercury?\n")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [line["abstained"] for line in lines] == [False, True]


def test_batch_from_a_file_for_search(cli_index, tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text("police\nterrorism\n", encoding="utf-8")
    r = run_qa("search", "--batch", str(questions), "-k", "1", "--index", str(cli_index))
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["query"] for line in r.stdout.splitlines()] == ["police", "terrorism"]


def test_env_settings_apply_and_flags_win(cli_index, tmp_path):
    r = run_qa("search", "police", "--json", env={"QA_INDEX": str(cli_index)})
    assert r.returncode == 0, r.stderr
    r = run_qa("search", "police", "--index", str(tmp_path / "none"), env={"QA_INDEX": str(cli_index)})
    assert r.returncode == 1 and "no index in" in r.stderr


def test_a_missing_index_is_one_line_with_the_command(tmp_path):
    r = run_qa("ask", "Who?", "--index", str(tmp_path / "nowhere"))
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith("error: no index in") and "python -m qa index" in r.stderr
    assert "Traceback" not in r.stderr


def test_the_rebuild_hint_names_only_what_it_knows(tmp_path):
    r = run_qa("ask", "Who?", "--index", str(tmp_path / "nowhere"))
    assert f"python -m qa index --data YOUR_TEXTS_FOLDER --index {tmp_path / 'nowhere'}" in r.stderr
    r = run_qa("ask", "Who?", env={"QA_INDEX": str(tmp_path / "nowhere"), "QA_DATA": str(tmp_path)})
    assert f"python -m qa index --data {tmp_path} --index {tmp_path / 'nowhere'}" in r.stderr


@pytest.mark.parametrize("args, env, words", [
    (["search", "police", "-k", "0"], {}, "k must be a whole number from 1 to 100"),
    (["ask", "police", "-k", "x"], {}, "k must be a whole number"),
    (["ask", "police"], {"QA_MIN_SCORE": "3"}, "min_score must be between 0 and 1"),
    (["ask", "police"], {"QA_TOP_K": "five"}, "top_k must be a number"),
    (["serve", "--allowed-origins", "example.com"], {}, "allowed origins must be *"),
    (["serve", "--port", "70000"], {}, "port must be between 1 and 65535"),
])
def test_bad_settings_exit_2_with_one_line(args, env, words):
    r = run_qa(*args, env=env)
    assert r.returncode == 2, r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr


def test_a_busy_port_is_one_clear_line(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run_qa("serve", "--port", str(port), "--index", str(tmp_path / "index"), timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip() == f"error: port {port} on 127.0.0.1 is in use; choose another with --port or QA_PORT"
    assert not (tmp_path / "index").exists()  # it failed before building anything


@pytest.mark.parametrize("args, words", [
    (["ask", "--batch", "/nonexistent/questions.txt"], "No such file or directory: /nonexistent/questions.txt"),
    (["ask", "--batch", "/"], "Is a directory"),
    (["ask", "Who?", "--index", "/etc/hostname"], "Not a directory"),
])
def test_file_system_errors_are_one_line(args, words):
    r = run_qa(*args)
    assert r.returncode == 1 and words in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_a_batch_file_that_is_not_utf8_is_one_line(tmp_path):
    (tmp_path / "q.txt").write_bytes(b"caf\xe9?\n")
    r = run_qa("ask", "--batch", str(tmp_path / "q.txt"), "--index", str(tmp_path))
    assert r.returncode == 1 and r.stderr.strip() == f"error: {tmp_path / 'q.txt'} is not UTF-8 text (byte 3)"


def test_an_empty_data_folder_exits_1(tmp_path):
    (tmp_path / "data").mkdir()
    r = run_qa("index", "--data", str(tmp_path / "data"), "--index", str(tmp_path / "index"))
    assert r.returncode == 1
    assert "error: no readable document (.txt, .md, .rst, .html, .pdf, .docx, .jsonl)" in r.stderr and "Traceback" not in r.stderr


def test_an_empty_question_is_a_clear_error(cli_index):
    r = run_qa("ask", "   ", "--index", str(cli_index))
    assert r.returncode == 1 and r.stderr.strip() == "error: Please type a question."


@pytest.mark.parametrize("command", [[], ["index"], ["search"], ["ask"], ["serve"], ["mcp"]])
def test_help_on_every_command(command):
    r = run_qa(*command, "--help")
    assert r.returncode == 0 and "usage: python -m qa" in r.stdout


def test_index_help_names_every_kind_of_file_it_reads():
    from qa.reading import SUFFIXES

    text = " ".join(run_qa("index", "--help").stdout.split())
    named = {s for s in SUFFIXES if s in text}
    assert named >= set(SUFFIXES) - {".markdown", ".htm"}, f"not named: {set(SUFFIXES) - named}"
