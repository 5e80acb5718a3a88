"""Interpretable surrogates of a trained policy, and how faithful they are.

Modules (each imports its heavy dependencies itself; this package imports nothing):

* ``surrogates``: the surrogate policies (ridge-linear, depth-limited
  regression tree), each fitted to weighted (state, teacher action) pairs.
* ``viper``: the VIPER recipe (Bastani, Pu and Solar-Lezama, NeurIPS 2018):
  DAgger with samples weighted by the teacher's Q-value gap, the best
  iteration picked by return on validation episodes or by fidelity on
  held-out teacher-visited states.
* ``critic``: the Q function of a run checkpoint's own C51 critic, which gives
  ``rwrl explain`` its Q-gap weights.
* ``fidelity``: action agreement (R^2, mean absolute action error) and the
  rollouts that give a policy's return and the states it visits.
* ``explain_run``: the ``rwrl explain`` pipeline on an ``rwrl run``
  checkpoint: the table, ``explain.json``, the trees as text and PNG.

Shapes: N states, D observation size, A action size; a policy maps
obs (N, D) -> actions (N, A) in the env's action units.
"""
