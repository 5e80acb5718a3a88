"""Bandits: rotting arms and a follower-acquisition contextual bandit, batched over N instances.

Its own small stack on numpy and ``rwrl.core.seeding`` (no MuJoCo layer):
``rotting`` (environments and their oracle), ``policies`` (SWA, wSWA, CTO, D-CTO and
baselines), ``simulate`` (regret curves); ``contextual`` (the follower-acquisition
simulator) and ``linear`` (LinUCB pooled, per account, windowed, shrunk; its runs).
Shapes: N instances, K arms.

Example:
  >>> from rwrl.bandits import run
  >>> run("rested-step", "swa", horizon=200, seed=0, num_instances=3).regret.shape
  (3, 200)
"""

from rwrl.bandits.contextual import FollowerBandit
from rwrl.bandits.linear import LEARNERS, make_learner, run_learner
from rwrl.bandits.policies import POLICIES, Policy, make_policy, swa_window
from rwrl.bandits.rotting import ENVS, RottingBandit, make_env
from rwrl.bandits.simulate import RegretCurves, log_grid, run

__all__ = ["ENVS", "LEARNERS", "POLICIES", "FollowerBandit", "Policy", "RegretCurves", "RottingBandit",
           "log_grid", "make_env", "make_learner", "make_policy", "run", "run_learner", "swa_window"]
