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
