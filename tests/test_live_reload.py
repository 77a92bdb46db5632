"""Rebuilding while serving: `python -m qa index` in another process adds text, and the running app answers
from it without a restart, while questions keep being answered from another thread with zero errors."""
import shutil
import threading
import time

import httpx

from conftest import DEFAULT_FILE, run_qa, start_server, stop


def test_the_served_app_picks_up_new_builds_with_no_failed_question(tmp_path):
    data, index = tmp_path / "data", tmp_path / "index"
    data.mkdir()
    shutil.copy(DEFAULT_FILE, data)
    url, proc = start_server(index, QA_DATA=str(data))
    statuses, stop_asking = [], threading.Event()

    def keep_asking():
        with httpx.Client(timeout=30) as client:
            while not stop_asking.is_set():
                r = client.post(url + "api/ask", json={"question": "Who directs the Secretariat?"})
                statuses.append((r.status_code, r.json().get("abstained")))

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        for round_, city in enumerate(("Graz", "Linz", "Salzburg")):
            (data / "picnic.md").write_text(f"# Picnic\nThe staff picnic is held in {city} this year.\n")
            r = run_qa("index", "--data", str(data), "--index", str(index), "--quiet")
            assert r.returncode == 0, r.stderr
            assert ("1 added" if round_ == 0 else "1 updated") in r.stdout
            deadline = time.monotonic() + 20
            while True:
                answer = httpx.post(url + "api/ask", json={"question": "Where is the staff picnic held?"},
                                    timeout=30).json()
                if city in answer["answer"]:
                    break
                assert time.monotonic() < deadline, answer
                time.sleep(0.3)
    finally:
        stop_asking.set()
        asker.join()
        stop(proc)
    assert len(statuses) > 10
    assert set(statuses) == {(200, False)}, set(statuses)  # every question answered, through three swaps


def test_index_watch_reindexes_when_files_change(tmp_path):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    data, index = tmp_path / "data", tmp_path / "index"
    data.mkdir()
    (data / "a.txt").write_text("Apples are red.\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    log = (tmp_path / "watch.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "qa", "index", "--watch", "--quiet", "--data", str(data),
                             "--index", str(index)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + 60
        while text not in (tmp_path / "watch.log").read_text():
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "watch.log").read_text()
            time.sleep(0.2)

    try:
        wait_for("watching")
        (data / "b.md").write_text("Bananas are yellow.\n")
        wait_for("files: 1 added, 0 updated, 0 removed, 1 unchanged")
        (data / "a.txt").unlink()
        wait_for("files: 0 added, 0 updated, 1 removed, 1 unchanged")
    finally:
        stop(proc)
    r = run_qa("ask", "What colour are bananas?", "--index", str(index))
    assert "Bananas are yellow" in r.stdout
