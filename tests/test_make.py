"""The Makefile before anything is installed: the wrong Python is one line, and a new Python rebuilds .venv.

Each test runs a copy of the Makefile in a temporary directory with PYTHON pointing at a fake interpreter (a
shell script that reports the version it is told to and records what it is asked to do), so no second Python,
network or pip is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not shutil.which("make"), reason="needs make")

# A fake `python`: answers the version query with $FAKE_VERSION; `-m venv DIR` makes a virtualenv whose
# python is this script and whose pyvenv.cfg records the version, as venv does; anything else is logged.
FAKE_PYTHON = r"""#!/bin/sh
echo "$*" >> "$FAKE_LOG"
case "$1 $2" in
  "-c import sys"*) echo "$FAKE_VERSION" ;;
  "-m venv") mkdir -p "$3/bin" && cp "$0" "$3/bin/python"
             printf 'home = /fake\nversion = %s\n' "$FAKE_VERSION" > "$3/pyvenv.cfg" ;;
esac
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The Makefile and the requirement files it depends on, and a fake interpreter at ./fakepython."""
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    fake = tmp_path / "fakepython"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    return tmp_path


def make(project: Path, version: str, *targets: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    env.update(FAKE_VERSION=version, FAKE_LOG=str(project / "fake.log"))
    return subprocess.run(
        ["make", "--no-print-directory", f"PYTHON={project / 'fakepython'}", *targets],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("target", [[], ["run"], ["test"], ["lint"]], ids=["make", "make run", "make test", "make lint"])
def test_python_3_10_is_refused_in_one_line_before_anything_runs(project: Path, target: list[str]):
    done = make(project, "3.10.12", *target)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode != 0
    assert len(output.splitlines()) == 1, output
    assert "found Python 3.10.12" in output and "needs Python 3.11+" in output
    assert not (project / ".venv").exists()
    assert "-m venv" not in (project / "fake.log").read_text()


def test_a_missing_interpreter_is_one_line(project: Path):
    command = ["make", "--no-print-directory", "PYTHON=/nonexistent/python3", "run"]
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=60)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode != 0 and len(output.splitlines()) == 1, output
    assert "no Python at PYTHON=/nonexistent/python3" in output and "3.11+" in output


@pytest.mark.parametrize("version", ["3.11.2", "3.12.0", "4.0.0"])
def test_supported_versions_build_the_virtualenv(project: Path, version: str):
    done = make(project, version)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (project / ".venv" / ".installed").exists()
    assert f"version = {version}" in (project / ".venv" / "pyvenv.cfg").read_text()


def test_a_new_interpreter_rebuilds_the_virtualenv_and_says_so(project: Path):
    assert make(project, "3.10.12").returncode != 0  # the first try, with the wrong Python: nothing is built
    assert make(project, "3.11.4").returncode == 0
    (project / ".venv" / "left-by-3.11").touch()

    same = make(project, "3.11.4")
    assert same.returncode == 0 and "rebuilding" not in same.stdout
    assert "is up to date" in same.stdout  # nothing reinstalled for the same interpreter

    done = make(project, "3.12.1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ".venv was built with Python 3.11.4, PYTHON is 3.12.1: rebuilding .venv" in done.stdout
    assert not (project / ".venv" / "left-by-3.11").exists()  # built from scratch
    assert "version = 3.12.1" in (project / ".venv" / "pyvenv.cfg").read_text()


def test_clean_and_browser_need_no_python(project: Path):
    done = make(project, "3.10.12", "-n", "clean", "browser")
    assert done.returncode == 0, done.stderr
    assert "apt-get install -y -qq chromium fonts-noto-color-emoji" in done.stdout
