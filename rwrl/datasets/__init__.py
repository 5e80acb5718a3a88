"""Behaviour policies and the suite's offline datasets, regenerated in Minari format.

* :mod:`rwrl.datasets.behaviour_policies`: load a D4PG snapshot (an ordinary run
  checkpoint) as one batched policy function ``obs (B, D) -> actions (B, A)``,
  evaluate it on the batched vector env, read and write the snapshot manifest.
* :mod:`rwrl.datasets.naming`: dataset ids, sizes and published episode counts.
* :mod:`rwrl.datasets.episodes`: whole episodes of a batched policy on the vector env.
* :mod:`rwrl.datasets.create`: ``rwrl dataset create``, generation in resumable
  chunks; :mod:`rwrl.datasets.store` turns the chunks into a Minari dataset
  atomically, computes its content checksum, lists and shows datasets.

Importing this package loads nothing heavy; JAX and Minari load in the
modules that use them.
"""
