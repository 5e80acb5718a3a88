"""A uniform replay buffer of n-step transitions fed by N parallel environments.

Each environment keeps a window of its last steps that are not yet a full
n-step transition. A step's transition is written once the n following
rewards are known, or earlier when its episode ends:

* terminated (a true terminal state): the remaining steps of the window are
  written with their shortened reward sums and discount 0, no bootstrap;
* truncated (a time limit): the remaining steps are written with their
  shortened reward sums, discount gamma**k for the k steps left, and the true
  final observation as the bootstrap state, because the episode could have
  gone on (Pardo et al. 2018, "Time Limits in Reinforcement Learning").

Either way the window is cleared, so a transition never spans two episodes.
A per-step cost (the constrained agents' c_t), when given, is summed into
``cost_t`` exactly as the rewards are into ``reward_t``; without one it is 0.
Storage is numpy float32 on the host, observations in ``obs_dtype``
(uint8 for images: a quarter of the bytes, D4PG-pixels' 84 x 84 x 9 frames
taking 127 KB per transition); sampling is uniform with replacement.

With ``state_size`` > 0 each transition also keeps ``state_tm1``, the physics
state of ``obs_tm1`` (the env's ``info['physics_state']``), in float64 so that
it round-trips bit for bit (a model stepped from it must start exactly there).

Saving: ``state_dict`` is the whole buffer at once. For checkpoints taken
again and again, the buffer is saved in two parts instead: the transitions,
numbered in the order they were written (``written`` counts them), which
``export_rows`` hands out from any number on, so that each checkpoint need
only add those written since the previous one; and the small rest
(``position_state``: ring position and pending windows). ``load_position_state``
then ``import_rows`` restore exactly the buffer that was saved.
"""

from __future__ import annotations

import numpy as np

from rwrl.agents.types import Transition

_STORED = ("obs_tm1", "action_tm1", "reward_t", "discount_t", "obs_t", "cost_t")
_PENDING = ("pending_obs", "pending_action", "pending_reward", "pending_cost", "pending_count")
#: keys that checkpoints written before costs were recorded lack; they restore as zeros.
_OPTIONAL = ("cost_t", "pending_cost")


class NStepReplay:
    """Ring buffer of n-step transitions from ``num_envs`` environments stepped together.

    Args:
        capacity: the most transitions kept; the oldest are overwritten.
        obs_size: length of the flat observation.
        action_size: length of the action.
        num_envs: N, the leading axis of every array passed to ``add``.
        n_step: steps summed into one transition before bootstrapping.
        gamma: per-step discount.
        state_size: length of the physics state stored with each transition; 0: none.
        obs_dtype: numpy dtype the observations are stored and sampled in: float32, or
            uint8 for images (``add`` casts to it).
    """

    def __init__(self, capacity: int, obs_size: int, action_size: int, num_envs: int, n_step: int,
                 gamma: float, state_size: int = 0, obs_dtype: type = np.float32):
        for name, value in (("capacity", capacity), ("obs_size", obs_size), ("action_size", action_size),
                            ("num_envs", num_envs), ("n_step", n_step)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name}={value!r}: must be an integer >= 1")
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma={gamma!r}: must be in (0, 1]")
        if int(state_size) != state_size or state_size < 0:
            raise ValueError(f"state_size={state_size!r}: must be an integer >= 0 (0: no state)")
        self.state_size = int(state_size)
        self.obs_dtype = np.dtype(obs_dtype)
        if self.obs_dtype not in (np.dtype(np.float32), np.dtype(np.uint8)):
            raise ValueError(f"obs_dtype={obs_dtype!r}: must be float32 or uint8")
        self.capacity, self.obs_size, self.action_size = int(capacity), int(obs_size), int(action_size)
        self.num_envs, self.n_step, self.gamma = int(num_envs), int(n_step), float(gamma)
        self._obs_tm1 = np.zeros((capacity, obs_size), self.obs_dtype)
        self._action_tm1 = np.zeros((capacity, action_size), np.float32)
        self._reward_t = np.zeros(capacity, np.float32)
        self._discount_t = np.zeros(capacity, np.float32)
        self._obs_t = np.zeros((capacity, obs_size), self.obs_dtype)
        self._cost_t = np.zeros(capacity, np.float32)
        self._next_index = 0
        self._size = 0
        self._written = 0  # transitions written since construction; the ring holds the last _size
        # transitions written before the last ``discard`` (0: none discarded); they are never sampled
        self._discarded = 0
        # Per env, the steps still waiting for their n-step return, oldest first.
        self._pending_obs = np.zeros((num_envs, n_step, obs_size), self.obs_dtype)
        self._pending_action = np.zeros((num_envs, n_step, action_size), np.float32)
        self._pending_reward = np.zeros((num_envs, n_step), np.float64)
        self._pending_cost = np.zeros((num_envs, n_step), np.float64)
        self._pending_count = np.zeros(num_envs, np.int64)
        if self.state_size:
            self._state_tm1 = np.zeros((capacity, self.state_size), np.float64)
            self._pending_state = np.zeros((num_envs, n_step, self.state_size), np.float64)

    def _stored(self) -> tuple[str, ...]:
        return (*_STORED, "state_tm1") if self.state_size else _STORED

    def _pending(self) -> tuple[str, ...]:
        return (*_PENDING, "pending_state") if self.state_size else _PENDING

    def __len__(self) -> int:
        return self._size

    def add(self, obs, action, reward, next_obs, terminated, truncated, mask=None, cost=None,
            state=None) -> None:
        """Record one vector-env step.

        Args:
            obs: (N, obs_size) observations the actions were taken in.
            action: (N, action_size) actions taken, in [-1, 1].
            reward: (N,) rewards received.
            next_obs: (N, obs_size) observations after the step; on the step an
                episode ends this must be the TRUE final observation, not the
                first observation of the next episode.
            terminated: (N,) bool, the episode reached a terminal state.
            truncated: (N,) bool, the episode was cut by a time limit.
            mask: optional (N,) bool, False for envs whose row is not a real
                transition, e.g. the reset step of Gymnasium's next-step
                autoreset, which would otherwise link two episodes.
            cost: optional (N,) per-step costs (e.g. ``info["cost"]``); None: 0.
            state: (N, state_size) physics states of ``obs``; required when
                ``state_size`` > 0, refused otherwise.
        """
        n = self.num_envs
        obs = self._check(obs, (n, self.obs_size), self.obs_dtype, "obs")
        action = self._check(action, (n, self.action_size), np.float32, "action")
        reward = self._check(reward, (n,), np.float64, "reward")
        next_obs = self._check(next_obs, (n, self.obs_size), self.obs_dtype, "next_obs")
        terminated = self._check(terminated, (n,), bool, "terminated")
        truncated = self._check(truncated, (n,), bool, "truncated")
        active = np.ones(n, bool) if mask is None else self._check(mask, (n,), bool, "mask")
        cost = np.zeros(n) if cost is None else self._check(cost, (n,), np.float64, "cost")
        if (state is None) != (self.state_size == 0):
            raise ValueError(f"state is {'missing' if state is None else 'given'}: this buffer "
                             f"stores states of size {self.state_size} (0: none)")

        envs = np.flatnonzero(active)
        slots = self._pending_count[envs]
        self._pending_obs[envs, slots] = obs[envs]
        self._pending_action[envs, slots] = action[envs]
        self._pending_reward[envs, slots] = reward[envs]
        self._pending_cost[envs, slots] = cost[envs]
        if self.state_size:
            state = self._check(state, (n, self.state_size), np.float64, "state")
            self._pending_state[envs, slots] = state[envs]
        self._pending_count[envs] += 1

        ended = active & (terminated | truncated)
        full = active & ~ended & (self._pending_count == self.n_step)
        self._emit_oldest(np.flatnonzero(full), next_obs)
        self._flush(np.flatnonzero(ended), next_obs, terminated)

    def _emit_oldest(self, envs: np.ndarray, next_obs: np.ndarray) -> None:
        """Write the oldest pending step of ``envs``, whose n rewards are now all known."""
        if envs.size == 0:
            return
        powers = self.gamma ** np.arange(self.n_step)
        self._write(
            self._pending_obs[envs, 0],
            self._pending_action[envs, 0],
            self._pending_reward[envs] @ powers,
            np.full(envs.size, self.gamma**self.n_step),
            next_obs[envs],
            self._pending_cost[envs] @ powers,
            self._pending_state[envs, 0] if self.state_size else None,
        )
        # Slide the window left by one step.
        self._pending_obs[envs, :-1] = self._pending_obs[envs, 1:]
        self._pending_action[envs, :-1] = self._pending_action[envs, 1:]
        self._pending_reward[envs, :-1] = self._pending_reward[envs, 1:]
        self._pending_cost[envs, :-1] = self._pending_cost[envs, 1:]
        if self.state_size:
            self._pending_state[envs, :-1] = self._pending_state[envs, 1:]
        self._pending_count[envs] -= 1

    def _flush(self, envs: np.ndarray, next_obs: np.ndarray, terminated: np.ndarray) -> None:
        """Write every pending step of the ``envs`` whose episode just ended, then clear them."""
        steps = np.arange(self.n_step)
        for j in range(self.n_step):
            sel = envs[self._pending_count[envs] > j]
            if sel.size == 0:
                break
            count = self._pending_count[sel]
            # Step j's return sums rewards j .. count-1, discounted from j.
            in_window = (steps >= j) & (steps[None, :] < count[:, None])
            weights = np.where(in_window, self.gamma ** np.maximum(steps - j, 0), 0.0)
            remaining = count - j
            discount = np.where(terminated[sel], 0.0, self.gamma**remaining)
            rewards = np.sum(weights * self._pending_reward[sel], axis=1)
            costs = np.sum(weights * self._pending_cost[sel], axis=1)
            state = self._pending_state[sel, j] if self.state_size else None
            self._write(self._pending_obs[sel, j], self._pending_action[sel, j], rewards, discount,
                        next_obs[sel], costs, state)
        self._pending_count[envs] = 0

    def _write(self, obs_tm1, action_tm1, reward_t, discount_t, obs_t, cost_t,
               state_tm1=None) -> None:
        index = (self._next_index + np.arange(len(reward_t))) % self.capacity
        if self.state_size:
            self._state_tm1[index] = state_tm1
        self._obs_tm1[index] = obs_tm1
        self._action_tm1[index] = action_tm1
        self._reward_t[index] = reward_t
        self._discount_t[index] = discount_t
        self._obs_t[index] = obs_t
        self._cost_t[index] = cost_t
        self._next_index = int((self._next_index + len(reward_t)) % self.capacity)
        self._size = min(self._size + len(reward_t), self.capacity)
        self._written += len(reward_t)

    def sample(self, rng: np.random.Generator, batch_size: int) -> Transition:
        """Return ``batch_size`` transitions drawn uniformly with replacement (numpy; observations in ``obs_dtype``)."""
        return self._gather(self._indices(rng, batch_size))

    def sample_many(self, rng: np.random.Generator, count: int, batch_size: int) -> Transition:
        """Return ``count`` batches of ``batch_size`` transitions, arrays (count, batch_size, ...).

        One vectorised draw of count x batch_size indices, uniform with
        replacement, for ``JittedAgent.update_many``. The indices are those of
        the same draw's flat stream taken batch by batch, which need not be
        those of ``count`` calls to ``sample`` (numpy's bounded draws are
        buffered per call).
        """
        return self._gather(self._indices(rng, (count, batch_size)))

    def _indices(self, rng: np.random.Generator, shape: int | tuple[int, ...]) -> np.ndarray:
        """Return stored positions of ``shape``, uniform with replacement.

        Position ``(d + r) % capacity`` for a draw r in [0, size), d the count
        discarded: the live transitions, and the draw's own positions when
        nothing was discarded.
        """
        if self._size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        draw = rng.integers(0, self._size, size=shape)
        return draw if self._discarded == 0 else (self._discarded + draw) % self.capacity

    def discard(self) -> None:
        """Forget every stored transition (a continual agent's replay at a regime switch).

        The count written goes on (``written``), so checkpoints' chunks and their
        spans stay valid; the pending n-step windows are kept (call it between
        episodes, when they are empty).
        """
        self._discarded, self._size = self._written, 0

    def latest(self, count: int) -> Transition:
        """Return the newest ``min(count, len(self))`` transitions, oldest first (as ``sample``)."""
        if int(count) != count or count < 1:
            raise ValueError(f"count={count!r}: must be an integer >= 1")
        first = self._written - min(int(count), self._size)
        return self._gather(np.arange(first, self._written) % self.capacity)

    def _gather(self, index: np.ndarray) -> Transition:
        """Return the transitions at ``index`` (any shape), numpy (observations in ``obs_dtype``)."""
        return Transition(
            obs_tm1=self._obs_tm1[index],
            action_tm1=self._action_tm1[index],
            reward_t=self._reward_t[index],
            discount_t=self._discount_t[index],
            obs_t=self._obs_t[index],
            cost_t=self._cost_t[index],
            state_tm1=self._state_tm1[index] if self.state_size else None,
        )

    def state_dict(self) -> dict[str, np.ndarray]:
        """Return plain numpy arrays from which ``load_state_dict`` restores this buffer exactly."""
        if self._discarded:
            raise ValueError("state_dict holds no discarded count: save a buffer that discarded "
                             "with position_state and export_rows")
        stored = {name: getattr(self, f"_{name}")[: self._size].copy() for name in self._stored()}
        return {**stored, **self.position_state()}

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        """Restore the state saved by ``state_dict``; raise ValueError if it belongs to another layout."""
        missing = [k for k in self._stored() if k not in d and k not in _OPTIONAL]
        if missing:
            raise ValueError(f"replay state is missing {missing}")
        if self.state_size and np.shape(d["state_tm1"])[1:] != (self.state_size,):
            raise ValueError(f"replay state holds physics states of shape {np.shape(d['state_tm1'])[1:]}, "
                             f"this buffer ({self.state_size},)")
        size = int(d.get("size", -1))
        # State dicts written before ``written`` existed: the smallest count that fits the ring.
        written = d["written"] if "written" in d else size + (size == self.capacity) * int(d.get("next_index", 0))
        self.load_position_state({**d, "written": np.array(written)})
        for name in self._stored():
            getattr(self, f"_{name}")[:size] = d.get(name, 0.0)

    @property
    def written(self) -> int:
        """Transitions written since the buffer was made; the ring holds the last ``len(self)``."""
        return self._written

    def position_state(self) -> dict[str, np.ndarray]:
        """Return the layout, ring position and pending n-step windows (everything but the transitions)."""
        pending = {name: getattr(self, f"_{name}").copy() for name in self._pending()}
        return {
            **pending,
            "shape": np.array([self.capacity, self.obs_size, self.action_size, self.num_envs, self.n_step]),
            "gamma": np.array(self.gamma),
            "next_index": np.array(self._next_index),
            "size": np.array(self._size),
            "written": np.array(self._written),
            "discarded": np.array(self._discarded),
        }

    def load_position_state(self, d: dict[str, np.ndarray]) -> None:
        """Restore ``position_state``'s arrays; the transitions come back with ``import_rows``.

        Raises:
          ValueError: ``d`` lacks an array, belongs to another layout, or its position does not add up.
        """
        required = [k for k in self._pending() if k not in _OPTIONAL]
        missing = [k for k in (*required, "shape", "gamma", "next_index", "size", "written") if k not in d]
        if missing:
            raise ValueError(f"replay state is missing {missing}")
        expected = [self.capacity, self.obs_size, self.action_size, self.num_envs, self.n_step]
        if list(np.asarray(d["shape"])) != expected or float(d["gamma"]) != self.gamma:
            raise ValueError(
                "replay state has (capacity, obs_size, action_size, num_envs, n_step), gamma = "
                f"{list(np.asarray(d['shape']))}, {float(d['gamma'])}; this buffer has {expected}, {self.gamma}"
            )
        written, size, next_index = int(d["written"]), int(d["size"]), int(d["next_index"])
        discarded = int(d.get("discarded", 0))  # states saved before ``discard`` existed: none
        if (not 0 <= discarded <= written or size != min(written - discarded, self.capacity)
                or next_index != written % self.capacity):
            raise ValueError(f"replay state's size {size} and next_index {next_index} do not fit "
                             f"{written} transitions written ({discarded} discarded) into a ring of "
                             f"{self.capacity}")
        for name in self._pending():
            getattr(self, f"_{name}")[...] = d.get(name, 0.0)
        self._size, self._next_index, self._written = size, next_index, written
        self._discarded = discarded

    def clear_pending(self) -> None:
        """Drop every env's pending window (their episodes will not go on)."""
        self._pending_count[:] = 0

    def export_rows(self, first: int) -> dict[str, np.ndarray]:
        """Return copies of the transitions written from the ``first``-th on, oldest first.

        Raises:
          ValueError: the ring no longer holds transition ``first`` (or it is in the future).
        """
        oldest = self._written - self._size
        if not oldest <= first <= self._written:
            raise ValueError(f"first={first}: the buffer holds transitions {oldest} to {self._written - 1}")
        index = np.arange(first, self._written) % self.capacity
        return {name: getattr(self, f"_{name}")[index] for name in self._stored()}

    def import_rows(self, first: int, rows: dict[str, np.ndarray]) -> int:
        """Put back ``export_rows(first)``'s arrays; return how many of them the ring holds.

        Call it after ``load_position_state``; rows older than the ring's oldest are skipped.

        Raises:
          ValueError: an array is missing or has another shape.
        """
        count = len(rows["reward_t"]) if "reward_t" in rows else -1
        for name in self._stored():
            if name in _OPTIONAL and name not in rows:
                continue
            shape = (count, *getattr(self, f"_{name}").shape[1:])
            if name not in rows or np.shape(rows[name]) != shape:
                raise ValueError(f"replay rows {name}: expected shape {shape}, got "
                                 f"{np.shape(rows[name]) if name in rows else 'none'}")
        start, end = max(first, self._written - self._size), min(first + count, self._written)
        index = np.arange(start, end) % self.capacity
        for name in self._stored():
            values = np.asarray(rows[name])[start - first:end - first] if name in rows else 0.0
            getattr(self, f"_{name}")[index] = values
        return max(end - start, 0)

    @staticmethod
    def _check(x, shape: tuple[int, ...], dtype, name: str) -> np.ndarray:
        x = np.asarray(x, dtype=dtype)
        if x.shape != shape:
            raise ValueError(f"{name} has shape {x.shape}, expected {shape}")
        return x
