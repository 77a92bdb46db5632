"""Which files are read, and how bad ones are skipped with one warning naming each."""
import os

from qa.reading import list_files, read_corpus


def test_reads_txt_and_md_recursively_and_skips_bad_files(tmp_path):
    (tmp_path / "a.txt").write_text("Alpha text.", encoding="utf-8")
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "b.md").write_text("# Beta\nBeta text.", encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.md").write_text("  \n\n ", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)))
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "c.txt").write_text("Hidden.", encoding="utf-8")
    warnings = []
    docs = list(read_corpus(tmp_path, warnings.append))
    assert [d.source for d in docs] == ["a.txt", "sub/deeper/b.md"]
    assert len(warnings) == 4
    for name in ("empty.txt", "blank.md", "latin1.txt", "binary.txt"):
        assert sum(name in w for w in warnings) == 1, (name, warnings)


def test_symlinks_leaving_the_data_folder_are_not_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("Secret.", encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    (data / "inside.txt").write_text("Inside.", encoding="utf-8")
    os.symlink(outside, data / "link.txt")
    os.symlink(data / "inside.txt", data / "alias.txt")
    assert [s for s, _ in list_files(data)] == ["alias.txt", "inside.txt"]


def test_files_are_listed_in_path_order_without_entering_linked_folders_or_taking_other_kinds(tmp_path):
    for name in ("a b/x.txt", "a/x.txt", "a/B.md", "a.txt", "Z/y.jsonl", "a/.cache/h.txt", "a/notes.TXT"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("Text.", encoding="utf-8")
    (tmp_path / "folder.txt").mkdir()  # a folder with a text suffix
    os.mkfifo(tmp_path / "pipe.txt")  # reading it would block the build
    os.symlink(tmp_path / "a", tmp_path / "linked")  # a folder link inside the data folder: not entered
    os.symlink(tmp_path / "missing.txt", tmp_path / "dangling.txt")
    sources = [s for s, _ in list_files(tmp_path)]
    assert sources == ["Z/y.jsonl", "a/B.md", "a/notes.TXT", "a/x.txt", "a b/x.txt", "a.txt"]
    assert all(p == tmp_path / s for s, p in list_files(tmp_path))


def test_link_loops_and_links_into_unreadable_places_are_left_out(tmp_path):
    (tmp_path / "a.txt").write_text("Alpha.", encoding="utf-8")
    os.symlink(tmp_path / "loop.txt", tmp_path / "loop.txt")
    os.symlink(tmp_path / "c.txt", tmp_path / "b.txt")
    os.symlink(tmp_path / "b.txt", tmp_path / "c.txt")
    os.symlink(tmp_path / "selfdir", tmp_path / "selfdir")
    assert [s for s, _ in list_files(tmp_path)] == ["a.txt"]


def test_a_200_mb_file_is_truncated_with_one_warning(tmp_path):
    from qa.reading import MAX_FILE_BYTES, read_file

    big = tmp_path / "big.txt"
    line = "Ünïcode text that goes on and on. " * 30 + "\n"
    with big.open("w", encoding="utf-8") as f:
        for _ in range(200 * 2**20 // len(line.encode()) + 1):
            f.write(line)
    assert big.stat().st_size >= 200 * 2**20
    warnings = []
    doc = read_file(big, "big.txt", warnings.append)
    assert warnings == ["truncated big.txt: only its first 50 MB are indexed"]
    assert MAX_FILE_BYTES - 4 <= len(doc.text.encode("utf-8")) <= MAX_FILE_BYTES  # cut on a character boundary
    assert doc.text.startswith("Ünïcode")


def test_a_qaignore_file_leaves_out_the_files_and_folders_it_names(tmp_path):
    from qa.reading import unindexed

    for name in ("guide.md", "CHANGES.rst", "docs/intro.md", "docs/overrides/nav.html", "drafts/idea.md",
                 "notes/a.txt", "notes/keep/b.txt", "site/page.html"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("Some text.", encoding="utf-8")
    (tmp_path / ".qaignore").write_text("# not for answers\nCHANGES.rst\noverrides/\ndrafts\n/notes/*.txt\n"
                                        "site/\n\n", encoding="utf-8")
    assert [s for s, _ in list_files(tmp_path)] == ["docs/intro.md", "guide.md", "notes/keep/b.txt"]
    left_out = unindexed(tmp_path)
    assert left_out.ignored == ("CHANGES.rst", "docs/overrides/", "drafts/", "notes/a.txt", "site/")
    assert left_out.hidden == () and ".qaignore, left out" in left_out.summary()
    (tmp_path / ".qaignore").write_text("**/*.html\nnotes/**\n[cd]*/intro.md\n", encoding="utf-8")
    assert [s for s, _ in list_files(tmp_path)] == ["CHANGES.rst", "drafts/idea.md", "guide.md"]
    (tmp_path / ".qaignore").write_text("guide[z-a].md\nnotes[/]a.txt\n", encoding="utf-8")  # a typo never fails
    assert len(list_files(tmp_path)) == 8  # "[z-a]" spells itself; a set never holds "/"
    (tmp_path / ".qaignore").unlink()
    assert len(list_files(tmp_path)) == 8
