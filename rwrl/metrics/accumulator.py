"""Running per-episode statistics of N environments, turned into episode rows.

All state is (N, ...) arrays updated under a mask of the envs that really
stepped, so a vector env of 64 costs a handful of numpy operations per step
rather than 64 Python appends; a single env is a batch of one.

``info`` is the batched env contract (leading axis N on every array):
``constraints`` (N, K) bool, True = satisfied; ``cost`` (N,);
``safety_vars`` name -> (N, ...); optional ``multiobj`` (N, 2),
``perturbation`` param -> (N,), ``realtime`` {``missed``: (N,), ``latency``:
(N,) seconds}, ``diverged`` (N,) bool (True on the step where that env's
simulation diverged; envs that do not report it never diverge), ``regime``
(N,) int (each env's physical regime). Keys beginning with ``_``
(Gymnasium's vector-info masks) are ignored.

``regimes`` gives each env's latest reported regime: that of its open
episode, or of its last one until the next reset reports the new one (a
loop reads it as the regime it is training on).

Per-step statistics cover the agent's steps only: the state returned by
``reset`` is not a step (the published suite also counts it, so its
violation totals can be one higher per episode).

``state_dict`` / ``load_state_dict`` save and restore the open episodes'
partial sums exactly (numpy arrays only), so a checkpointed run finishes
them as if it had not stopped.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from rwrl.metrics import schema

Info = Mapping[str, Any]


def _per_env(value: Any, num_envs: int) -> np.ndarray:
    """Return ``value`` as float64 (N, D): per-env components flattened in C order."""
    return np.asarray(value, dtype=np.float64).reshape(num_envs, -1)


def _public(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if not str(k).startswith("_")}


class _RunningStats:
    """Sum, sum of squares, min and max per env and component, for mean/std/min/max.

    Values are summed relative to a per-env ``shift`` (the value at reset)
    so that the variance, sum_sq / n - mean^2, does not lose precision to
    cancellation when a variable's mean is far from 0 relative to its spread.
    One block holds every component of every variable: a step costs six
    numpy operations whatever the number of variables.
    """

    def __init__(self, num_envs: int, dim: int):
        self.shift = np.zeros((num_envs, dim))
        self.total = np.zeros((num_envs, dim))
        self.total_sq = np.zeros((num_envs, dim))
        self.min = np.full((num_envs, dim), np.inf)
        self.max = np.full((num_envs, dim), -np.inf)

    def clear(self, ids) -> None:
        self.total[ids], self.total_sq[ids] = 0.0, 0.0
        self.min[ids], self.max[ids] = np.inf, -np.inf

    def add(self, sel, x: np.ndarray) -> None:
        """Add one step of values ``x`` (M, D) for the envs ``sel`` (slice or bool mask) selects."""
        d = x - self.shift[sel]
        if isinstance(sel, slice):  # every env stepped: update in place, no copies
            self.total += d
            self.total_sq += d * d
            np.minimum(self.min, x, out=self.min)
            np.maximum(self.max, x, out=self.max)
        else:
            self.total[sel] += d
            self.total_sq[sel] += d * d
            self.min[sel] = np.minimum(self.min[sel], x)
            self.max[sel] = np.maximum(self.max[sel], x)

    _FIELDS = ("shift", "total", "total_sq", "min", "max")

    def state_dict(self, prefix: str) -> dict[str, np.ndarray]:
        return {prefix + name: getattr(self, name).copy() for name in self._FIELDS}

    def load_state_dict(self, d: dict[str, np.ndarray], prefix: str) -> None:
        for name in self._FIELDS:
            _load_into(getattr(self, name), d, prefix + name)

    def stats(self, i: int, count: int) -> dict[str, np.ndarray]:
        """Mean, population std (ddof = 0), min and max of env ``i`` over ``count`` steps."""
        n = max(count, 1)
        centred_mean = self.total[i] / n
        variance = np.maximum(self.total_sq[i] / n - centred_mean**2, 0.0)
        return {"mean": self.shift[i] + centred_mean, "std": np.sqrt(variance),
                "min": self.min[i], "max": self.max[i]}


class EpisodeAccumulator:
    """Per-episode totals and safety-variable statistics of N environments.

    Args:
      num_envs: N.
      constraint_names: the K constraint names, in ``info["constraints"]`` order.
    """

    def __init__(self, num_envs: int, constraint_names: Sequence[str]):
        self.num_envs = num_envs
        self.constraint_names = tuple(constraint_names)
        self._return = np.zeros(num_envs)
        self._length = np.zeros(num_envs, dtype=np.int64)
        self._cost = np.zeros(num_envs)
        self._violations = np.zeros((num_envs, len(self.constraint_names)), dtype=np.int64)
        # Safety variables: name -> per-env shape, in one stats block (fixed at first sight).
        self._safety_shapes: dict[str, tuple[int, ...]] | None = None
        self._safety: _RunningStats | None = None
        # Optional groups, created the first time the env reports them.
        self._multiobj: np.ndarray | None = None
        self._misses: np.ndarray | None = None
        self._latency: _RunningStats | None = None
        self._perturb: dict[str, np.ndarray] = {}
        self._diverged: np.ndarray | None = None  # (N,) bool, once the env reports it
        # (N,) int, each env's latest reported regime; not cleared: the next reset overwrites it
        self._regime: np.ndarray | None = None

    def clear(self, ids) -> None:
        """Forget the partial episodes of envs ``ids`` (bool mask (N,), indices or slice)."""
        for total in (self._return, self._length, self._cost, self._violations,
                      self._multiobj, self._misses, self._diverged):
            if total is not None:
                total[ids] = 0
        for values in self._perturb.values():
            values[ids] = np.nan  # unknown until the env reports the new value
        for stats in (self._safety, self._latency):
            if stats is not None:
                stats.clear(ids)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Return the open episodes' partial sums as named arrays (``load_state_dict`` restores them)."""
        d = {"return": self._return, "length": self._length, "cost": self._cost,
             "violations": self._violations}
        optional = {"multiobj": self._multiobj, "misses": self._misses, "diverged": self._diverged,
                    "regime": self._regime}
        d.update({name: value for name, value in optional.items() if value is not None})
        d.update({f"perturb/{name}": values for name, values in self._perturb.items()})
        if self._safety is not None:
            d.update({f"safety_shape/{name}": np.array(shape, np.int64)
                      for name, shape in self._safety_shapes.items()})
            d.update(self._safety.state_dict("safety/"))
        if self._latency is not None:
            d.update(self._latency.state_dict("latency/"))
        return {name: np.array(value) for name, value in d.items()}

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        """Restore ``state_dict``'s partial sums into this (fresh) accumulator.

        Raises:
          ValueError: an array is missing or has another shape (e.g. another N or K).
        """
        for name, total in (("return", self._return), ("length", self._length),
                            ("cost", self._cost), ("violations", self._violations)):
            _load_into(total, d, name)
        n = self.num_envs
        for name, shape, dtype in (("multiobj", (n, 2), np.float64), ("misses", (n, 2), np.int64),
                                   ("diverged", (n,), bool), ("regime", (n,), np.int64)):
            if name in d:
                setattr(self, f"_{name}", np.zeros(shape, dtype))
                _load_into(getattr(self, f"_{name}"), d, name)
        for key in d:
            if key.startswith("perturb/"):
                _load_into(self._perturbation(key[len("perturb/"):]), d, key)
        self._safety_shapes = {key[len("safety_shape/"):]: tuple(int(x) for x in d[key])
                               for key in d if key.startswith("safety_shape/")} or None
        if self._safety_shapes is not None:
            dim = sum(int(np.prod(shape)) for shape in self._safety_shapes.values())
            self._safety = _RunningStats(n, dim)
            self._safety.load_state_dict(d, "safety/")
        if "latency/total" in d:
            self._latency = _RunningStats(n, 1)
            self._latency.load_state_dict(d, "latency/")

    def observe_reset(self, ids, info: Info) -> None:
        """Take from a batched reset info what holds for the whole episode.

        The perturbation values, and the safety variables' reset values as
        the shift of their running sums (the reset is not a step).
        """
        for name, value in _public(info.get("perturbation", {})).items():
            self._perturbation(name)[ids] = _per_env(value, self.num_envs)[ids, 0]
        self._observe_regime(ids, info)
        if "safety_vars" in info:
            self._safety_block(info["safety_vars"])
            self._safety.shift[ids] = self._safety_matrix(info["safety_vars"])[ids]

    def add_step(self, active: np.ndarray, reward: np.ndarray, info: Info) -> None:
        """Add one step of the envs where ``active`` is True.

        Args:
          active: (N,) bool; False for envs whose step was an autoreset.
          reward: (N,) rewards of this step.
          info: the batched info of this step.
        """
        sel = slice(None) if active.all() else active  # a slice updates in place
        self._return[sel] += np.asarray(reward, dtype=np.float64)[sel]
        self._length[sel] += 1
        self._cost[sel] += np.asarray(info["cost"], dtype=np.float64).reshape(-1)[sel]
        flags = np.asarray(info["constraints"], dtype=bool).reshape(self.num_envs, -1)
        if flags.shape[1] != len(self.constraint_names):
            raise ValueError(
                f"info['constraints'] has {flags.shape[1]} flags per env, expected "
                f"{len(self.constraint_names)} ({self.constraint_names})"
            )
        self._violations[sel] += ~flags[sel]
        if "safety_vars" in info:
            self._safety_block(info["safety_vars"])
            self._safety.add(sel, self._safety_matrix(info["safety_vars"])[sel])
        self._add_optional(sel, info)

    def _safety_block(self, safety_vars: Mapping[str, Any]) -> None:
        if self._safety_shapes is None:
            public = _public(safety_vars)
            self._safety_shapes = {name: np.shape(value)[1:] for name, value in public.items()}
            dim = sum(int(np.prod(shape)) for shape in self._safety_shapes.values())
            self._safety = _RunningStats(self.num_envs, dim)

    def _safety_matrix(self, safety_vars: Mapping[str, Any]) -> np.ndarray:
        """All safety variables side by side, (N, D), in the order first seen."""
        try:
            columns = [_per_env(safety_vars[name], self.num_envs) for name in self._safety_shapes]
        except KeyError as error:
            raise ValueError(f"info['safety_vars'] lacks {error}, reported before") from None
        return np.concatenate(columns, axis=1) if columns else np.zeros((self.num_envs, 0))

    @property
    def regimes(self) -> np.ndarray | None:
        """(N,) int64 copy of each env's latest reported regime (-1: none yet); None: never reported."""
        return None if self._regime is None else self._regime.copy()

    def _observe_regime(self, sel, info: Info) -> None:
        if "regime" in info:
            if self._regime is None:
                self._regime = np.full(self.num_envs, -1, np.int64)
            self._regime[sel] = np.asarray(info["regime"], np.int64).reshape(-1)[sel]

    def _add_optional(self, sel, info: Info) -> None:
        self._observe_regime(sel, info)
        if "diverged" in info:
            if self._diverged is None:
                self._diverged = np.zeros(self.num_envs, dtype=bool)
            self._diverged[sel] |= np.asarray(info["diverged"], dtype=bool).reshape(-1)[sel]
        if "multiobj" in info:
            if self._multiobj is None:
                self._multiobj = np.zeros((self.num_envs, 2))
            self._multiobj[sel] += _per_env(info["multiobj"], self.num_envs)[sel]
        for name, value in _public(info.get("perturbation", {})).items():
            self._perturbation(name)[sel] = _per_env(value, self.num_envs)[sel, 0]
        if "realtime" in info:
            if self._misses is None:
                # column 0: steps whose action missed its deadline; 1: control periods missed
                self._misses = np.zeros((self.num_envs, 2), dtype=np.int64)
                self._latency = _RunningStats(self.num_envs, 1)
            realtime = info["realtime"]
            missed = np.asarray(realtime["missed"], dtype=np.int64).reshape(-1)[sel]
            self._misses[sel, 0] += missed > 0
            self._misses[sel, 1] += missed
            self._latency.add(sel, _per_env(realtime["latency"], self.num_envs)[sel])

    def _perturbation(self, name: str) -> np.ndarray:
        if name not in self._perturb:
            self._perturb[name] = np.full(self.num_envs, np.nan)
        return self._perturb[name]

    def row(self, i: int) -> dict[str, Any]:
        """Return the finished episode of env ``i`` as a flat row (see rwrl.metrics.schema)."""
        length = int(self._length[i])
        row: dict[str, Any] = {
            schema.RETURN: float(self._return[i]),
            schema.LENGTH: length,
            schema.COST: float(self._cost[i]),
        }
        for k, name in enumerate(self.constraint_names):
            row[schema.VIOLATIONS + name] = int(self._violations[i, k])
        for k, name in enumerate(self.constraint_names):
            row[schema.VIOLATION_RATE + name] = self._violations[i, k] / max(length, 1)
        if self._safety is not None:
            row.update(_safety_columns(self._safety_shapes, self._safety.stats(i, length)))
        row.update(self._optional_row(i))
        return row

    def _optional_row(self, i: int) -> dict[str, Any]:
        row: dict[str, Any] = {}
        if self._multiobj is not None:
            row[schema.MULTIOBJ_REWARD] = float(self._multiobj[i, 0])
            row[schema.MULTIOBJ_SAFETY] = float(self._multiobj[i, 1])
        for name, values in self._perturb.items():
            row[schema.PERTURB + name] = float(values[i])
        if self._misses is not None:
            row[schema.DEADLINE_MISSES] = int(self._misses[i, 0])
            row[schema.MISSED_PERIODS] = int(self._misses[i, 1])
            latency = self._latency.stats(i, int(self._length[i]))
            row[schema.LATENCY + "mean"] = float(latency["mean"][0])
            row[schema.LATENCY + "max"] = float(latency["max"][0])
        if self._diverged is not None:
            row[schema.DIVERGED] = int(self._diverged[i])
        if self._regime is not None:
            row[schema.REGIME] = int(self._regime[i])
        return row


def _load_into(target: np.ndarray, d: Mapping[str, np.ndarray], name: str) -> None:
    """Copy ``d[name]`` into ``target`` in place, refusing a missing array or another shape."""
    if name not in d or np.shape(d[name]) != target.shape:
        found = np.shape(d[name]) if name in d else "none"
        raise ValueError(f"accumulator state {name}: expected shape {target.shape}, got {found}")
    target[...] = d[name]


def _safety_columns(shapes: Mapping[str, tuple[int, ...]],
                    stats: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Flatten the stats block: ``safety/<var>/<stat>``, or per component ``safety/<var>/<j>/<stat>``."""
    columns, offset = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        for j in range(size):
            base = schema.SAFETY + name + ("" if len(shape) == 0 else f"/{j}")
            for stat in schema.SAFETY_STATS:
                columns[f"{base}/{stat}"] = float(stats[stat][offset + j])
        offset += size
    return columns
