"""Sweeps: a grid of runs from a TOML file, run locally or on Ray, resumed and archived.

* ``plan``: the sweep file's format, its validation and expansion into planned runs.
* ``bandit_plan``: the bandit sweep file (``kind = "bandit"``): runs of ``rwrl bandits run``.
* ``run``: runs a plan (records it, skips finished runs, resumes partial ones).
* ``backends``: the local process pool and the Ray backend.
* ``worker``: one run inside a worker process (thread settings, then ``rwrl run``).
* ``archive``: finished runs copied out of a sweep directory, to commit.
"""
