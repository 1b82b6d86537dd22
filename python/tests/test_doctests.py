"""The examples of the package's docstrings run (``help(msgrpriv)`` shows them): doctest on
every module of the package."""

from __future__ import annotations

import doctest
import importlib
import pydoc
from pathlib import Path

import pytest

import msgrpriv

MODULES = sorted(f"msgrpriv.{p.stem}" for p in Path(msgrpriv.__file__).parent.glob("*.py")
                 if p.stem != "__init__")
WITH_EXAMPLES = {"msgrpriv", "msgrpriv.aio", "msgrpriv.codes", "msgrpriv.enums", "msgrpriv.errors"}


@pytest.mark.parametrize("name", ["msgrpriv"] + MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} doctest failure(s) in {name} (see the output)"
    if name in WITH_EXAMPLES:
        assert result.attempted > 0


def test_help_renders_the_examples() -> None:
    text = pydoc.render_doc(msgrpriv, renderer=pydoc.plaintext)
    assert ">>> import msgrpriv" in text and "msgrpriv.aio.invite" in text


def test_the_guide_starts_with_examples_that_run() -> None:
    """docs/PYTHON.md opens with install, a short example and the asyncio example: both run
    and print what their comments say."""
    import os
    import re
    import subprocess
    import sys

    from helpers import REPO

    guide = REPO / "docs" / "PYTHON.md"
    if not guide.is_file():
        pytest.skip("docs/PYTHON.md is not next to these tests")
    text = guide.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings[:3] == ["Install", "Example", "With asyncio"], headings
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    short, with_asyncio = blocks[0], blocks[1]
    assert len(short.strip().splitlines()) <= 16
    env = dict(os.environ, PYTHONPATH=str(Path(msgrpriv.__file__).resolve().parents[1]))
    for code, expected in ((short, ["accepted: sure", "CONNECTED"]), (with_asyncio, ["accepted: sure"])):
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60, cwd="/", env=env)
        assert p.returncode == 0, p.stderr
        assert p.stdout.splitlines() == expected
