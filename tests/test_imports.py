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
    "from typer.testing import CliRunner\nfrom rwrl.cli import app\n"
    "assert CliRunner().invoke(app, ['envs']).exit_code == 0",
])
def test_the_env_side_loads_no_learning_stack(code):
    assert _loaded_after(code) == []


def test_making_an_agent_loads_jax():
    assert "jax" in _loaded_after("from rwrl.agents import make_agent\nmake_agent('d4pg', 3, 1)")
