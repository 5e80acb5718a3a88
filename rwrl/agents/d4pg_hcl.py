"""D4PG-HCL: D4PG whose regime switches are found by HCL's flow detector, then consolidated as EWC does.

Issue 29: "a flow over transitions (s, a, s' - s) detects the switch; detection
triggers consolidation and/or replay". The switches are unknown to this agent:
``observe_regime`` ignores the regime the env reports (it is neither read nor
recorded; ``state.regime`` holds the detector's task index, the agent's belief).
At each call (after training envs reset) it takes the transitions written to the
replay since its last look, feeds them to a ``rwrl.continual.hcl.TaskDetector``
in batches of ``detector_batch``, and at a declared change consolidates with
``rwrl.agents.consolidation`` (diagonal Fisher: EWC's penalty, triggered by the
detection instead of the reported switch); the run loop then empties the replay
(``reset_replay_at_switch``), as for ``d4pg-ewc``.

Choices (none tuned):

* Detector input ``x = concat(obs_tm1, action_tm1, obs_t - obs_tm1)`` of each
  stored transition. ``obs_t`` is the replay's n-step bootstrap observation
  (``n_step`` steps on, fewer at an episode's end), not the one-step next
  observation: the n-step replay keeps no other, and D4PG's ``n_step`` (5) is
  kept rather than learning from one-step returns for the detector's sake. So x
  models the displacement over n steps under the current policy's actions: a
  dynamics change moves it; slow policy improvement moves it too, which HCL's
  reference line (fitted through the window) follows.
* Which transitions: those written since the last look (a counter of
  ``replay.written`` in the state); ones already gone (overwritten, or discarded
  at a switch) are skipped, at most ``detector_max_batches`` batches per look
  (the newest; older ones are skipped), and a remainder short of a batch waits for
  the next look.
* What is consolidated at a detection: the detector declares a change
  ``patience`` atypical batches after the first one, so the replay's newest
  transitions are partly the new regime's. The curvature is estimated on the
  ``consolidation_batch`` transitions written just before the first atypical
  batch of the wait that declared the change (its written index is kept in the
  state); if none of those are still stored, on the newest ones.
* A recognised earlier task (``step.recognised``): the task that just ended is
  consolidated all the same, in a new slot. A task that ends a second time gets
  a second penalty, anchored at its newer weights; the older one stays until
  the slots' ring overwrites it (``max_consolidations``). The event says
  ``recognised`` 1.0 and ``detected_task`` (the detector's index of the task
  now learned).
* Detector settings: ``rwrl.continual.hcl.detector_config``'s defaults, except
  those the fields below name; seed: drawn from the key of the call that
  creates the detector (its first full batch), so a run's seed sets it.
* Resume: the detector (flax parameters, Adam state, numpy windows, generator)
  is serialised after every call that fed it (``TaskDetector.state_dict``,
  ``np.savez``, no pickle) into ``state.extra['detector']``, a uint8 buffer of
  a fixed capacity (``hcl.state_bytes_bound`` of the detector's width, config
  and batch; cartpole with the defaults: about 0.6 MB) beside its length and a
  version (the detector calls so far). The agent state is saved whole by the
  checkpoint, so the detector goes with it; the Python detector is rebuilt from
  the buffer when it is missing or its version differs from the state's.

Example::

    rwrl run --agent d4pg-hcl --env cartpole-swingup --steps 60000 --env-kwarg time_limit=200 \\
        --env-kwarg 'regime_spec={"regimes": [{"pole_length": 1.0}, {"pole_length": 3.0}], "episodes_per_regime": 150}'
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rwrl.agents import d4pg
from rwrl.agents.capabilities import Capabilities
from rwrl.agents.config import require_int
from rwrl.agents.consolidation import ConsolidatedState, ConsolidatingD4PG, ConsolidationConfig
from rwrl.agents.replay import NStepReplay
from rwrl.agents.types import Transition
from rwrl.continual import hcl


@dataclasses.dataclass(frozen=True)
class D4PGHCLConfig(d4pg.D4PGConfig, ConsolidationConfig):
    """D4PG's, the consolidation's and the detector's settings (module docstring)."""

    #: transitions per detector batch: 64, twice HCL's digit batches (32), for a sharper per-batch
    #: test on 11-d inputs; about 15 batches per 1000-step episode.
    detector_batch: int = 64
    #: the most batches fed per look (a look follows each episode's end); older new ones are skipped.
    detector_max_batches: int = 64
    #: batches of a task before its first test; HCL's 40 (2560 transitions, under 3 1000-step episodes).
    detector_warmup: int = 40
    #: atypical batches in a row that declare a change; HCL's 3.
    detector_patience: int = 3
    #: batches whose scores form the reference; HCL's 20.
    detector_window: int = 20
    #: tasks the detector can tell apart; 8 like max_consolidations (with all used, the closest resumes).
    detector_max_tasks: int = 8
    #: the flow's affine couplings: detector_config's 4, fewer than HCL's digit flow (6).
    detector_couplings: int = 4
    #: units of each coupling's hidden layers: detector_config's 64, fewer than HCL's digit flow (128).
    detector_hidden: int = 64

    def __post_init__(self):
        super().__post_init__()
        for name in ("detector_batch", "detector_max_batches", "detector_warmup", "detector_patience",
                     "detector_window", "detector_max_tasks", "detector_couplings", "detector_hidden"):
            require_int(self, name)
        hcl.check_config(self.detector_config(0))

    def detector_config(self, seed: int) -> hcl.HCLConfig:
        """The ``TaskDetector``'s config: ``detector_config``'s defaults with the fields above."""
        return hcl.detector_config(warmup=self.detector_warmup, patience=self.detector_patience,
                                   window=self.detector_window, max_tasks=self.detector_max_tasks,
                                   num_couplings=self.detector_couplings, hidden=self.detector_hidden,
                                   seed=int(seed))


def detector_inputs(batch: Transition) -> np.ndarray:
    """Return (n, 2 obs + action) ``concat(obs_tm1, action_tm1, obs_t - obs_tm1)`` (module docstring)."""
    obs, action, nxt = (np.asarray(x, np.float32) for x in (batch.obs_tm1, batch.action_tm1, batch.obs_t))
    return np.concatenate([obs, action, nxt - obs], axis=1)


class D4PGHCL(ConsolidatingD4PG):
    """D4PG with EWC's diagonal-Fisher penalties at the switches an HCL flow detects."""

    capabilities = Capabilities(continual=True)
    config_class = D4PGHCLConfig
    form = "diagonal"

    # ------------------------------------------------------------ the detector's state
    @property
    def detector_dim(self) -> int:
        return 2 * self.obs_size + self.action_size

    @property
    def detector_capacity(self) -> int:
        """Bytes of the buffer that holds the serialised detector (``hcl.state_bytes_bound``)."""
        if not hasattr(self, "_capacity"):
            self._capacity = hcl.state_bytes_bound(self.detector_dim, self.config.detector_config(0),
                                                   self.config.detector_batch)
        return self._capacity

    def init_extra(self) -> Any:
        """The serialised detector (empty), its length and version, the replay counter, the wait's start."""
        zero = jnp.zeros((), jnp.int32)
        return {"detector": jnp.zeros(self.detector_capacity, jnp.uint8), "length": zero, "version": zero,
                "seen": zero, "wait_start": zero}

    def _detector_for(self, extra: dict[str, Any]) -> hcl.TaskDetector | None:
        """Return the detector of this state: the Python one if its version is the state's, else rebuilt."""
        version = int(extra["version"])
        if getattr(self, "_detector", None) is not None and self._detector_version == version:
            return self._detector
        length = int(extra["length"])
        if length == 0:
            return None
        raw = np.asarray(extra["detector"])[:length].tobytes()
        with np.load(io.BytesIO(raw), allow_pickle=False) as saved:
            d = {k: saved[k] for k in saved.files}
        detector = hcl.TaskDetector(self.detector_dim, self.config.detector_config(int(d["config_seed"])))
        detector.load_state_dict(d)
        self._detector, self._detector_version = detector, version
        return detector

    def _saved(self, detector: hcl.TaskDetector, seed: int, extra: dict[str, Any]) -> dict[str, Any]:
        """Return ``extra`` with the detector serialised into its buffer and the version advanced."""
        out = io.BytesIO()
        np.savez(out, config_seed=np.array(seed), **detector.state_dict())
        raw = np.frombuffer(out.getvalue(), np.uint8)
        if len(raw) > self.detector_capacity:
            raise ValueError(f"d4pg-hcl: the detector's state takes {len(raw)} bytes, more than the "
                             f"{self.detector_capacity} its checkpoint buffer holds (hcl.state_bytes_bound)")
        buffer = np.zeros(self.detector_capacity, np.uint8)
        buffer[:len(raw)] = raw
        version = int(extra["version"]) + 1
        self._detector, self._detector_version = detector, version
        return {**extra, "detector": jnp.asarray(buffer), "length": jnp.asarray(len(raw), jnp.int32),
                "version": jnp.asarray(version, jnp.int32)}

    # ------------------------------------------------------------ switches
    def observe_regime(self, state: ConsolidatedState, replay: NStepReplay, regime: int | None,
                       key: jax.Array) -> tuple[ConsolidatedState, dict[str, float] | None]:
        """Feed the transitions written since the last look to the detector; consolidate at a change.

        ``regime`` is ignored (module docstring). Returns the new state and, at a
        declared change, the event: ``switched`` 1.0, ``detected_task``,
        ``recognised``, ``ended_task`` and ``consolidate``'s numbers; None otherwise.
        """
        del regime  # the switches are the detector's to find
        c = self.config
        size = c.detector_batch
        extra = dict(state.extra)
        written = replay.written
        start = max(int(extra["seen"]), written - len(replay), written - c.detector_max_batches * size)
        batches = (written - start) // size
        if batches == 0:
            return state, None
        detector = self._detector_for(extra)
        seed = None
        if detector is None:
            seed = int(jax.random.randint(jax.random.fold_in(key, 29), (), 0, 2 ** 31 - 1))
            detector = hcl.TaskDetector(self.detector_dim, c.detector_config(seed))
        else:
            seed = detector.model.config.seed
        fresh = replay.latest(written - start)
        x = detector_inputs(fresh)
        wait_start, event = int(extra["wait_start"]), None
        for b in range(batches):
            ended = detector.task
            step = detector.update(x[b * size:(b + 1) * size])
            if step.atypical and step.pending == 1:
                wait_start = start + b * size
            if step.changed and event is None:
                # consolidate on the transitions just before the wait that declared the change
                available = written - len(replay)
                first = max(wait_start - c.consolidation_batch, available)
                if first < wait_start:
                    data = _slice(replay.latest(written - first), 0, wait_start - first)
                else:
                    data = replay.latest(c.consolidation_batch)
                state, numbers = self.consolidate(state, data, key)
                event = {"switched": 1.0, "detected_task": float(step.task), "ended_task": float(ended),
                         "recognised": float(step.recognised is not None), **numbers}
            # a second change within one look (rare: warm-up takes detector_warmup batches) is
            # declared by the detector but not consolidated again before the replay is reset
        extra.update(seen=jnp.asarray(start + batches * size, jnp.int32),
                     wait_start=jnp.asarray(wait_start, jnp.int32))
        extra = self._saved(detector, seed, extra)
        return state._replace(extra=extra, regime=jnp.asarray(detector.task, jnp.int32)), event


def _slice(batch: Transition, first: int, stop: int) -> Transition:
    return jax.tree_util.tree_map(lambda x: x[first:stop], batch)


__all__ = ["D4PGHCL", "D4PGHCLConfig", "detector_inputs"]
