"""Off-policy evaluation: estimate a policy's value from a dataset alone, and score the estimates.

Modules (each imports its heavy dependencies itself; this package imports nothing):

* ``metrics``: the DOPE benchmark metrics (absolute error, rank correlation,
  regret@1) with bootstrap intervals over policies.
* ``fqe``: fitted Q evaluation (JAX) of a deterministic policy.
* ``maxent``: the maximum-entropy stationary-distribution estimator for
  average-reward MDPs (Lazic et al. 2020).
* ``tabular_mdp``: finite MDPs with exact discounted values and average rewards
  (the estimators' ground truth in tests and benchmarks), data drawn from them.
* ``evaluate``: the ``rwrl ope`` pipeline: a Minari dataset, a policy set, true
  values from online rollouts, the table.
"""
