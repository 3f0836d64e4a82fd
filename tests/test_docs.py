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


def _conf():
    """docs/conf.py as a module (it imports fastrnn, not sphinx)."""
    spec = importlib.util.spec_from_file_location("fastrnn_docs_conf", DOCS / "conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    return conf


def test_index_links_every_readme_section():
    conf = _conf()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sections = [title for _, title in conf.readme_sections(readme)]
    # the parser finds the headings, and not the '# comment' lines inside code blocks
    assert "Set up" in sections and "Python API" in sections and "Threads and kernel paths" in sections
    assert not any(t.startswith("language model") for t in sections)
    links = conf.readme_section_links(readme)
    assert len(links.splitlines()) == len(sections)
    assert "- [Set up](readme.md#set-up)" in links
    assert ("  - [Training any model: `fastrnn.fit`, callbacks, schedulers]"
            "(readme.md#training-any-model-fastrnnfit-callbacks-schedulers)") in links
    assert conf.README_SECTIONS in (DOCS / "index.md").read_text(encoding="utf-8")


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
    # every README section is linked from the index (docutils names the resolved target after
    # the heading's text, so the href holds that id rather than the GitHub slug)
    from docutils.nodes import make_id
    index = (html / "index.html").read_text(encoding="utf-8")
    for _, title in _conf().readme_sections((ROOT / "README.md").read_text(encoding="utf-8")):
        assert f'href="readme.html#{make_id(title.replace("`", ""))}"' in index, title
    # every public name has its entry in the API reference (a name added to fastrnn.__all__
    # needs a line in docs/api/*.rst)
    import fastrnn
    ids = set()
    for page in (html / "api").glob("*.html"):
        ids |= set(re.findall(r'id="([^"]+)"', page.read_text(encoding="utf-8")))
    assert "fastrnn.fit" in ids and "fastrnn.Trainer" in ids and "fastrnn.sklearn.RNNSequenceClassifier" in ids
    missing = [n for n in fastrnn.__all__ if n != "__version__"
               and f"fastrnn.{n}" not in ids and f"module-fastrnn.{n}" not in ids]
    assert not missing, f"not in the API reference (docs/api/*.rst): {missing}"
