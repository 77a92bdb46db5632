"""The installable package: the wheel holds what the app serves and ships, its `qa` command works outside the
checkout, and pyproject.toml's dependency ranges admit exactly the tested pins of requirements.txt."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import qa
from conftest import DEFAULT_FILE, ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "--disable-pip-version-check", "-w", str(out), str(ROOT)], check=True, timeout=300)
    [built] = out.glob("qa-*.whl")
    return built


def test_the_wheel_holds_the_served_and_shipped_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    static = {f"qa/static/{p.name}" for p in (ROOT / "qa" / "static").iterdir()}
    models = {f"qa/models/{p.name}" for p in (ROOT / "qa" / "models").iterdir()}
    modules = {f"qa/{p.name}" for p in (ROOT / "qa").glob("*.py")}
    assert static and models >= {"qa/models/reader.onnx", "qa/models/reader.json"}
    assert static | models | modules <= names, sorted((static | models | modules) - names)
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "bench/", "index/", "data/"))]
    info = f"qa-{qa.__version__}.dist-info"
    entry = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
    assert "qa = qa.cli:main" in entry
    metadata = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
    assert f"Version: {qa.__version__}" in metadata and "Requires-Dist: torch==2.13.0" in metadata


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            pins[req.name.lower().replace("_", "-")] = str(req.specifier).removeprefix("==")
    return pins


def test_pyproject_ranges_admit_the_tested_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    pins = _pins()
    for line in declared:
        req = Requirement(line)
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{name} is declared in pyproject.toml but not pinned in requirements.txt"
        assert req.specifier.contains(pins[name]), f"{name}: the tested {pins[name]} is outside {req.specifier}"
    assert Requirement(next(d for d in declared if d.startswith("torch"))).specifier == \
        Requirement(f"torch=={pins['torch']}").specifier  # pinned: an unpinned torch pulls the CUDA build


def test_the_installed_command_answers_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--disable-pip-version-check",
                    "--target", str(site), str(wheel)], check=True, timeout=300)
    work = tmp_path / "my-docs"
    (work / "data").mkdir(parents=True)
    (work / "data" / DEFAULT_FILE.name).write_text(DEFAULT_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(PYTHONPATH=str(site), QA_CACHE=str(ROOT / ".cache"))  # the machine's ONNX export, made once

    def qa_command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(site / "bin" / "qa"), *args], cwd=work, env=env, capture_output=True, text=True,
                              timeout=300)

    version = qa_command("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"qa {qa.__version__}"
    where = subprocess.run([sys.executable, "-c", "import qa; print(qa.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=60)
    assert where.stdout.strip().startswith(str(site))  # the installed copy, not the checkout
    built = qa_command("index", "--quiet")
    assert built.returncode == 0 and "indexed 1 file" in built.stdout, built.stderr
    answer = qa_command("ask", "Who directs the Secretariat?")
    assert answer.returncode == 0, answer.stderr
    assert "Secretary General" in answer.stdout and "[1] osce_overview.txt" in answer.stdout
    assert (work / "index" / "CURRENT").is_file()  # the index went beside the data, in the current folder
