"""Adding documents over the web: off without an admin token, refused without the right one, safe names only,
nothing written outside the data folder; accepted files are indexed and answered from (API and browser)."""
import shutil

import httpx
import pytest

from conftest import DEFAULT_FILE, start_server, stop

TOKEN = "s3cret-admin-token"


@pytest.fixture(scope="module")
def admin_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("admin")
    data = root / "data"
    data.mkdir()
    shutil.copy(DEFAULT_FILE, data)
    url, proc = start_server(root / "index", QA_DATA=str(data), QA_ADMIN_TOKEN=TOKEN)
    yield url, data, root
    stop(proc)


def post(url, files, token=TOKEN):
    headers = {} if token is None else {"Authorization": token if " " in token else f"Bearer {token}"}
    return httpx.post(url + "api/documents", files=files, headers=headers, timeout=120)


def test_uploads_are_off_without_a_configured_token(served_app):
    r = post(served_app, [("files", ("a.txt", b"Hello."))])
    assert r.status_code == 404 and "Uploads are off" in r.json()["error"]
    assert "qa-admin" not in httpx.get(served_app + "config", timeout=30).text


@pytest.mark.parametrize("token", [None, f"Basic {TOKEN}", "wrong", TOKEN + "x", TOKEN[:-1]])
def test_a_missing_or_wrong_token_is_refused(admin_app, token):
    url, data, _ = admin_app
    r = post(url, [("files", ("intruder.txt", b"Intruder text."))], token=token)
    assert r.status_code == 401 and not list(data.rglob("intruder.txt"))


@pytest.mark.parametrize("name, status, words", [
    ("../../escape.txt", 400, "may not contain folders"),
    ("/etc/escape.txt", 400, "may not contain folders"),
    ("..\\escape.txt", 400, "may not contain folders"),
    (".hidden.txt", 400, "hidden files"),
    ("program.exe", 400, "only .txt"),
])
def test_unsafe_names_are_refused_and_nothing_is_written(admin_app, name, status, words):
    url, data, root = admin_app
    before = sorted(data.rglob("*"))
    r = post(url, [("files", (name, b"Escaped text."))])
    assert r.status_code == status and words in r.json()["error"], r.text
    assert sorted(data.rglob("*")) == before
    assert not list(root.parent.rglob("escape.txt")) and not list(root.parent.rglob("program.exe"))


def test_odd_characters_in_a_name_are_replaced_inside_the_upload_folder(admin_app):
    url, data, _ = admin_app
    r = post(url, [("files", ("bad\x00na;me$.txt", b"Odd name."))])  # httpx sends the NUL as %00
    assert r.status_code == 200, r.text
    (stored,) = r.json()["stored"]
    assert stored.startswith("uploads/") and "\x00" not in stored and ";" not in stored and "$" not in stored
    assert (data / stored).is_file()


def test_an_oversize_file_and_too_many_files_are_refused(admin_app):
    url, data, _ = admin_app
    r = post(url, [("files", ("big.txt", b"x" * (50 * 1024 * 1024 + 1)))])
    assert r.status_code == 413 and "larger than 50 MB" in r.json()["error"]
    r = post(url, [("files", (f"n{i}.txt", b"note")) for i in range(101)])
    assert r.status_code == 400 and "at most 100" in r.json()["error"], r.text
    assert not list(data.rglob("big.txt")) and not list(data.rglob("n1.txt"))


def test_accepted_files_are_indexed_and_answered_from(admin_app):
    url, data, _ = admin_app
    r = post(url, [("files", ("picnic.md", b"# Picnic\nThe staff picnic is held in Graz on Friday.\n")),
                   ("files", ("empty.txt", b""))])
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["stored"] == ["uploads/picnic.md", "uploads/empty.txt"] and out["files_added"] == 1  # empty: skipped
    assert any("empty.txt" in w for w in out["warnings"])
    assert (data / "uploads" / "picnic.md").is_file()
    answer = httpx.post(url + "api/ask", json={"question": "Where is the staff picnic held?"}, timeout=30).json()
    assert "Graz" in answer["answer"] and answer["citations"][0]["source"] == "uploads/picnic.md"


def test_the_browser_panel_adds_documents_with_the_token(admin_app, tmp_path, browser):
    url, data, _ = admin_app
    doc = tmp_path / "harbour.txt"
    doc.write_text("The harbour master is called Ingrid Olsen.\n", encoding="utf-8")
    page = browser.new_page()
    page.goto(url)
    page.get_by_text("Add documents").click()
    page.locator("#qa-files input[type=file]").set_input_files(str(doc))
    page.locator("#qa-token input").fill("wrong")
    page.locator("#qa-add").click()
    page.get_by_text("The admin token is missing or wrong.").wait_for(timeout=30_000)
    assert not (data / "uploads" / "harbour.txt").exists()
    page.locator("#qa-token input").fill(TOKEN)
    page.locator("#qa-add").click()
    page.get_by_text("Ask away.").wait_for(timeout=60_000)
    page.locator("#qa-question textarea").fill("Who is the harbour master?")
    page.locator("#qa-question textarea").press("Enter")
    page.locator("#qa-sources mark").first.wait_for(timeout=30_000)
    assert "Ingrid Olsen" in page.locator("#qa-chat").inner_text()
    assert "uploads/harbour.txt" in page.locator("#qa-sources").inner_text()
    page.close()


def test_safe_names_by_hand():
    from qa.uploads import UploadRefused, safe_name

    assert safe_name("Report 2024 (final).md") == "Report 2024 _final_.md"
    for bad in ("", ".", "..", "a/b.txt", "a\\b.txt", "nul\x00.txt", ".env.txt", "x.exe", "x.txt.sh"):
        with pytest.raises(UploadRefused):
            safe_name(bad)
