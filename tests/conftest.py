"""Shared fixtures: the real packaged model, an index of the default corpus, and a served app."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from qa.assistant import Assistant
from qa.config import ROOT, Config, build_config
from qa.embedding import Embedder
from qa.indexing import new_index_backend

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
DEFAULT_DATA = ROOT / "data"
DEFAULT_FILE = DEFAULT_DATA / "osce_overview.txt"
# The public benchmarks live in ../shared/eval beside the checkout (QA_SHARED_EVAL names another place).
SHARED_EVAL = next((p for p in (Path(os.environ.get("QA_SHARED_EVAL", "")), ROOT.parent / "shared" / "eval",
                                Path("/work/shared/eval")) if str(p) not in ("", ".") and p.is_dir()),
                   ROOT.parent / "shared" / "eval")


def shared_eval() -> Path:
    """The shared benchmark folder, or a failure that says where it was looked for (never a silent skip)."""
    if not SHARED_EVAL.is_dir():
        pytest.fail(f"the public benchmarks are missing: expected {ROOT.parent / 'shared' / 'eval'} (the "
                    "shared folder beside the checkout) or QA_SHARED_EVAL=DIR")
    return SHARED_EVAL


@pytest.fixture(scope="session")
def embedder(tmp_path_factory) -> Embedder:
    """The encoder users get by default on this machine (onnx-int8 or onnx: calibration.py), exported once per
    machine into .cache/encoders."""
    e = Embedder(backend=new_index_backend(Config(device="cpu")).backend, encoder_dir=tmp_path_factory.mktemp("encoders"),
                 shared_dir=Config().cache_dir / "encoders")
    e.warm_up()
    return e


@pytest.fixture(scope="session")
def default_index(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("default-index")


@pytest.fixture(scope="session")
def assistant(default_index, embedder) -> Assistant:
    """An assistant over the default corpus, built once for the session with the real model and FAISS."""
    a = Assistant(build_config({}, data_dir=DEFAULT_DATA, index_dir=default_index))
    a.embedder = embedder
    a.build(warn=lambda m: None)
    return a


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _builds_on_the_cpu(request, monkeypatch):
    """Builds run on the CPU in every test but tests/test_device.py, so that a machine with a GPU gets the same
    encoders (and figures) as one without; processes started by tests get QA_DEVICE=cpu for the same reason."""
    if request.module.__name__ != "test_device":
        monkeypatch.setattr("qa.cpu.cuda_available", lambda: False)


def run_qa(*args: str, stdin: str | None = None, env: dict | None = None, timeout: int = 180):
    """python -m qa ARGS in a fresh process, from the repo root (builds on the CPU unless env says otherwise)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    full_env.update({"QA_DEVICE": "cpu", **(env or {})})
    return subprocess.run([sys.executable, "-m", "qa", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, env=full_env, timeout=timeout)


def wait_for_http(url: str, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


def start_server(index: Path, **env_extra: str) -> tuple[str, subprocess.Popen]:
    """`python -m qa serve` on a free port of 127.0.0.1 over the default corpus; returns (url, process)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update({"QA_DATA": str(DEFAULT_DATA), "QA_INDEX": str(index), "QA_PORT": str(port), "QA_DEVICE": "cpu",
                **env_extra})
    log = (index.parent / f"server-{port}.log").open("w")  # a file, not a pipe: a full pipe would stall the server
    proc = subprocess.Popen([sys.executable, "-m", "qa", "serve"], cwd=ROOT, env=env, text=True,
                            stdout=log, stderr=subprocess.STDOUT)
    proc.log_path = Path(log.name)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url + "api/health", proc)  # the page comes first; health says 200 once the index is ready
    except Exception:
        stop(proc)
        raise
    return url, proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def served_index(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("served-index")


@pytest.fixture(scope="session")
def served_app(served_index):
    """The app as users start it, with no index yet (it builds one on first start); any origin may embed it."""
    url, proc = start_server(served_index)
    yield url
    stop(proc)


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium, driven by Playwright (its own browser download does not work here)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def milvus(tmp_path_factory):
    """A Milvus Lite server, as `milvus-lite server --data-dir DIR --host 127.0.0.1 --port P`."""
    exe = shutil.which("milvus-lite", path=str(Path(sys.executable).parent)) or shutil.which("milvus-lite")
    assert exe, "milvus-lite is not installed (pymilvus[milvus-lite] in requirements.txt)"
    port = free_port()
    folder = tmp_path_factory.mktemp("milvus")
    log = (folder / "server.log").open("w")
    proc = subprocess.Popen([exe, "server", "--data-dir", str(folder / "data"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    from pymilvus import MilvusClient

    deadline = time.monotonic() + 60
    while True:
        try:
            MilvusClient(uri=uri, timeout=2).list_collections()
            break
        except Exception:
            assert proc.poll() is None and time.monotonic() < deadline, (folder / "server.log").read_text()
            time.sleep(0.3)
    yield uri
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="session")
def milvus_235(tmp_path_factory):
    """The real Milvus 2.3.5 binary from the `milvus` PyPI package (no server-side BM25), on a free port."""
    from milvus import MilvusServer

    server = MilvusServer()
    server.set_base_dir(str(tmp_path_factory.mktemp("milvus235")))
    server.listen_port = free_port()
    try:
        server.start()
    except TimeoutError:
        server.stop()
        pytest.fail("the Milvus 2.3.5 binary did not start within 180 s; another one already running on this "
                    "machine (`pgrep -fa 'milvus run standalone'`) keeps a second from starting")
    yield f"http://127.0.0.1:{server.listen_port}"
    server.stop()
