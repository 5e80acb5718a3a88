"""The docstring examples (``>>>``) of every rwrl module run and give what they show.

Examples written as ``::`` literal blocks are documentation only and are not run.
"""

import doctest
import importlib
import pkgutil

import pytest

import rwrl

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# Modules whose docstrings promise runnable examples: finding none there means
# the examples were lost (or the finder broke), which must not pass silently.
MUST_HAVE_EXAMPLES = {
    f"rwrl.challenges.{name}"
    for name in ("combined", "delay", "dimensionality", "multiobj", "noise", "perturb",
                 "pipeline", "realtime", "regime", "safety", "specs")
} | {"rwrl.metrics.continual", "rwrl.core.seeding", "rwrl.envs.autoreset",
     "rwrl.envs.dm_env_adapter", "rwrl.envs.gym_env", "rwrl.bandits", "rwrl.bandits.contextual", "rwrl.bandits.linear"}


def module_names(path=rwrl.__path__, prefix="rwrl.") -> list[str]:
    """Return every module and package under ``path``, found without importing them.

    Importing at collection would pull JAX and MuJoCo into every test run, even
    one that selects a single unrelated test.
    """
    names = []
    for info in pkgutil.iter_modules(path):
        names.append(prefix + info.name)
        if info.ispkg:
            sub_path = [f"{info.module_finder.path}/{info.name}"]
            names += module_names(sub_path, f"{prefix}{info.name}.")
    return sorted(names)


MODULES = ["rwrl"] + module_names()


def test_module_list_covers_the_package():
    # A sanity floor: the walk found the subpackages and their modules.
    assert MUST_HAVE_EXAMPLES <= set(MODULES)
    assert {"rwrl.agents.d4pg", "rwrl.experiments.run", "rwrl.cli"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    if name.startswith("rwrl.integrations."):  # each needs its framework: the integrations extra
        module = pytest.importorskip(name, reason="needs pip install -e '.[integrations]'")
    else:
        module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)
    if name in MUST_HAVE_EXAMPLES:
        assert result.attempted > 0, f"{name} has no docstring examples left"
