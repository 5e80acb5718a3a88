"""Light imports: the env side of rwrl never loads JAX or pandas; errors are never hidden."""

import subprocess
import sys

import pytest

HEAVY = ("jax", "flax", "optax", "rlax", "pandas")


def _loaded_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; return the heavy modules it loaded."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=300)
    return out.stdout.split()


@pytest.mark.parametrize("code", [
    "import rwrl",
    "import gymnasium, rwrl\n"
    "env = gymnasium.make('rwrl/cartpole-swingup-v0', combined_challenge='easy')\n"
    "env.reset(seed=0); env.step(env.action_space.sample())",
    "import gymnasium, rwrl\nvec = gymnasium.make_vec('rwrl/walker-walk-v0', num_envs=2)\nvec.reset(seed=0)",
    "import rwrl\nenv = rwrl.load('cartpole', 'swingup'); env.reset()",
    "import rwrl.agents",
    # the registry's capabilities and the run config's checks read no agent module
    "from rwrl.agents import AGENTS\nassert AGENTS['rmpo'].capabilities.model_set\n"
    "from rwrl.experiments.config import RunConfig\nRunConfig(agent='crr', dataset='d')",
    "from typer.testing import CliRunner\nfrom rwrl.cli import app\n"
    "assert CliRunner().invoke(app, ['envs']).exit_code == 0",
])
def test_the_env_side_loads_no_learning_stack(code):
    assert _loaded_after(code) == []


def test_making_an_agent_loads_jax():
    assert "jax" in _loaded_after("from rwrl.agents import make_agent\nmake_agent('d4pg', 3, 1)")


def test_an_import_error_in_a_subcommand_is_raised_not_swallowed(tmp_path):
    code = ("import sys\nsys.modules['rwrl.experiments.run'] = None  # as if it failed to import\n"
            "from typer.testing import CliRunner\nfrom rwrl.cli import app\n"
            f"result = CliRunner().invoke(app, ['run', '--steps', '10', '--out', {str(tmp_path)!r}])\n"
            "print(type(result.exception).__name__, result.exit_code)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=300)
    name, exit_code = out.stdout.split()
    assert name in ("ImportError", "ModuleNotFoundError") and exit_code != "0"
