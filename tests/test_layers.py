"""The layer map of the package: every import points down (DESIGN.md, "Layers")."""

import ast
import pathlib

import pytest

import rwrl

#: room -> floor; a module may import lower floors, and one room of its own floor may
#: import another only if that one does not import it back. The package's ``__init__.py``
#: (registration, ``rwrl.load``) is the front door, on the top floor.
FLOORS = {"core": 0, "storage": 1, "domains": 1, "video": 1, "bandits": 1, "tasks": 2, "challenges": 3,
          "envs": 4, "metrics": 5, "agents": 5, "continual": 5, "planning": 5, "datasets": 6, "ope": 6, "distill": 6,
          "explain": 6, "minatar": 6, "experiments": 7, "report": 7, "cli": 8, "integrations": 8, "__init__": 8}

ROOT = pathlib.Path(rwrl.__file__).parent


def _imports(path: pathlib.Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _room(path: pathlib.Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def test_every_module_sits_in_a_room_on_the_map():
    """A module outside the map would be skipped by the import check below."""
    rooms = {_room(path) for path in ROOT.rglob("*.py")}
    assert sorted(rooms - set(FLOORS)) == [], "a new room needs its floor in FLOORS (and DESIGN.md)"


def test_no_import_points_up_the_layers():
    upward, sideways = [], set()
    for path in sorted(ROOT.rglob("*.py")):
        own = _room(path)
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] != "rwrl" or len(parts) < 2 or parts[1] == own:
                continue
            assert parts[1] in FLOORS, f"{path.relative_to(ROOT)} imports {name}, a room off the map"
            if FLOORS[parts[1]] > FLOORS[own]:
                upward.append(f"{path.relative_to(ROOT)} imports {name}")
            elif FLOORS[parts[1]] == FLOORS[own]:
                sideways.add((own, parts[1]))
    assert upward == []
    assert [(a, b) for a, b in sideways if (b, a) in sideways] == []


@pytest.mark.parametrize("room", ["core"])
def test_the_engine_room_imports_no_jax(room):
    for path in sorted((ROOT / room).rglob("*.py")):
        heads = {name.split(".")[0] for name in _imports(path)}
        assert not heads & {"jax", "flax", "optax", "torch"}, path
