"""Packaging (issue 25): the installed distribution's metadata (one version, SPDX license, the
Python floor the README states, py.typed), and setup.py's clear refusal on Windows. The
source-file checks skip where the tests run without the source tree (cibuildwheel's copy)."""
import importlib.metadata
import importlib.resources
import os
import re
import subprocess
import sys

import pytest

import fastrnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _source(name):
    path = os.path.join(ROOT, name)
    if not os.path.exists(path):
        pytest.skip(f"no {name} beside tests/ (tests copied without the source tree)")
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_installed_metadata():
    meta = importlib.metadata.metadata("fastrnn")
    assert meta["Version"] == fastrnn.__version__          # one version source
    assert meta["License-Expression"] == "MIT"
    assert meta["Requires-Python"] == ">=3.10"
    assert importlib.resources.files("fastrnn").joinpath("py.typed").is_file()


def test_one_version_and_one_python_floor_in_the_sources():
    tomllib = pytest.importorskip("tomllib")                # Python >= 3.11
    project = tomllib.loads(_source("pyproject.toml"))["project"]
    assert "version" not in project and project["dynamic"] == ["version"]
    assert project["requires-python"] == ">=3.10"
    assert "Python ≥ 3.10" in _source("README.md")
    minors = [int(c.rsplit(".", 1)[1]) for c in project["classifiers"]
              if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    assert min(minors) == 10
    assert os.path.exists(os.path.join(ROOT, "LICENSE"))


def test_setup_py_refuses_windows_with_a_clear_message(tmp_path):
    _source("setup.py")
    code = ("import sys; sys.platform = 'win32'; sys.argv = ['setup.py', '--version']; "
            "exec(compile(open('setup.py').read(), 'setup.py', 'exec'))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode != 0
    assert "Windows is not supported yet" in run.stderr
