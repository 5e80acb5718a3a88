"""The docstring examples of the challenge modules run and give what they show."""

import doctest
import importlib

import pytest

MODULES = ["combined", "delay", "dimensionality", "multiobj", "noise", "perturb", "pipeline",
           "realtime", "safety", "specs"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"rwrl.challenges.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
