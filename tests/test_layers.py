"""The layer map of the package: every import points down (DESIGN.md, "Layers")."""

import ast
import pathlib

import rwrl

#: package -> floor; a module may import lower floors, and one package of its own
#: floor may import another only if that one does not import it back.
FLOORS = {"core": 0, "domains": 1, "tasks": 2, "challenges": 3, "envs": 4, "metrics": 5,
          "agents": 5, "datasets": 6, "ope": 6, "experiments": 7, "report": 7, "cli": 8,
          "cli_run": 8, "cli_ope": 8, "cli_data": 8, "rollout": 8}


def _imports(path: pathlib.Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_no_import_points_up_the_layers():
    root = pathlib.Path(rwrl.__file__).parent
    upward, sideways = [], set()
    for path in sorted(root.rglob("*.py")):
        own = path.relative_to(root).parts[0].removesuffix(".py")
        for name in _imports(path):
            parts = name.split(".")
            if own not in FLOORS or parts[0] != "rwrl" or len(parts) < 2 \
                    or parts[1] not in FLOORS or parts[1] == own:
                continue
            if FLOORS[parts[1]] > FLOORS[own]:
                upward.append(f"{path.relative_to(root)} imports {name}")
            elif FLOORS[parts[1]] == FLOORS[own]:
                sideways.add((own, parts[1]))
    assert upward == []
    assert [(a, b) for a, b in sideways if (b, a) in sideways] == []
    assert {p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()} \
        <= set(FLOORS), "a new package needs its floor in FLOORS (and in DESIGN.md)"
