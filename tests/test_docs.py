"""The documentation site builds with warnings as errors, and its index links every README section.

Needs the `docs` extra (sphinx, numpydoc, myst-parser). Without it the build test skips, except in
CI (FASTRNN_REQUIRE_TORCH=1, as tests/conftest.py uses it): there a missing extra is a failure.
"""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _require_docs_tools():
    missing = [m for m in ("sphinx", "numpydoc", "myst_parser") if importlib.util.find_spec(m) is None]
    if not missing:
        return
    msg = f"the docs extra is not installed (no {', '.join(missing)}): pip install '.[docs]'"
    if os.environ.get("FASTRNN_REQUIRE_TORCH") == "1":
        pytest.fail("FASTRNN_REQUIRE_TORCH=1 (CI) but " + msg)
    pytest.skip(msg)


def _readme_sections():
    """The ## and ### headings of README.md, outside code blocks."""
    sections, in_code = [], False
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(r"#{2,3} ", line):
            sections.append(line.lstrip("#").strip())
    return sections


def _github_anchor(title):
    """GitHub's (and MyST's) anchor of a heading: lower case, punctuation dropped, spaces -> '-'."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def test_index_links_every_readme_section():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    sections = _readme_sections()
    assert "Set up" in sections and "Python API" in sections     # the parser finds the headings
    missing = [s for s in sections if f"(readme.md#{_github_anchor(s)})" not in index]
    assert not missing, f"docs/index.md does not link these README sections: {missing}"


def test_docs_build_without_warnings(tmp_path):
    _require_docs_tools()
    # -W: every warning is an error; --keep-going: report all of them, not just the first.
    # The anchors linked by index.md are checked by this build (a missing one is a warning).
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    assert proc.stderr.strip() == "", proc.stderr[-6000:]
    html = (tmp_path / "html")
    assert (html / "index.html").is_file() and (html / "readme.html").is_file()
    # the API pages hold the autodoc output of the public API (an import failure would leave them
    # empty with only a warning, but check the content too)
    api = (html / "api" / "training.html").read_text(encoding="utf-8")
    assert 'id="fastrnn.fit"' in api and 'id="fastrnn.Trainer"' in api
