"""Seeds and random streams for batched environments.

Two kinds of randomness, both reproducible per environment and independent of
how many environments share a batch:

* ``env_rng(seed, stream)``: a numpy ``Generator`` for rare events (the initial
  state at reset, a perturbation scheduler's draw), one per environment.
* ``CounterRandom``: a counter-based generator for per-step noise. Its draws
  are a hash of (environment key, stream, step counter, component), computed
  on the whole (N, ...) batch in a few numpy operations, so that a batch of 64
  environments draws its noise without a Python loop and env i of a batch sees
  exactly the numbers a single environment with the same key sees.

Vector seeding: env i of a vector env reset with seed s behaves as a single
env reset with ``spawn_seeds(s, n)[i]``.
"""

from __future__ import annotations

import zlib

import numpy as np

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def spawn_seeds(seed: int | None, n: int) -> list[int]:
    """Return n independent integer seeds spawned from ``seed`` (numpy SeedSequence).

    Args:
      seed: the vector env's seed; None draws fresh entropy.
      n: number of environments.

    Returns:
      A list of n non-negative Python ints, the i-th being env i's seed.
    """
    children = np.random.SeedSequence(seed).spawn(n)
    return [int(c.generate_state(1, dtype=np.uint64)[0]) for c in children]


def check_seed(seed, field: str = "seed") -> int | None:
    """Return ``seed`` as an int (None stays None), or raise a ValueError naming ``field``."""
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{field} = {seed!r} is not allowed: give a non-negative int or None")
    return int(seed)


def fresh_seed() -> int:
    """Return a seed drawn from OS entropy, for a reset without a seed."""
    return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0])


def stream_id(stream: str) -> int:
    """Return a stable 32-bit id for a named random stream."""
    return zlib.crc32(stream.encode())


def env_rng(seed: int, stream: str) -> np.random.Generator:
    """Return the Generator of one environment's named stream.

    Args:
      seed: the environment's seed (a non-negative int).
      stream: the consumer's name ("task", "perturb", ...), so that consumers
        never share numbers.
    """
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(stream_id(stream),)))


def stream_key(seed: int, stream: str) -> np.uint64:
    """Return the 64-bit key of one environment's counter-based stream."""
    state = np.random.SeedSequence(seed, spawn_key=(stream_id(stream),))
    return state.generate_state(1, dtype=np.uint64)[0]


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Return the splitmix64 finaliser of uint64 values (a bijective mixer).

    In-place on a fresh array: uint64 array arithmetic wraps silently, and
    this runs on every step, so it avoids temporaries and ``np.errstate``.
    """
    x = np.add(x, _GOLDEN)
    x ^= x >> _S30
    x *= _MIX1
    x ^= x >> _S27
    x *= _MIX2
    x ^= x >> _S31
    return x


def box_muller(u1: np.ndarray, u2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return two independent N(0, 1) arrays from two U[0, 1) arrays of one shape."""
    radius = np.sqrt(-2.0 * np.log(1.0 - u1))  # 1 - u in (0, 1]: the log is finite
    angle = 2.0 * np.pi * u2
    return radius * np.cos(angle), radius * np.sin(angle)


class CounterRandom:
    """Per-environment counter-based random numbers for a batch.

    Each environment has a 64-bit key and a counter that advances by one per
    ``next_step`` call; a draw for component j is a hash of (key, counter,
    draw index, j). Draws therefore depend only on the environment's own seed
    and its own step count.

    Example:
      >>> rng = CounterRandom(2)
      >>> rng.reset(np.arange(2), [stream_key(0, "noise"), stream_key(1, "noise")])
      >>> rng.uniform((3,)).shape
      (2, 3)
    """

    def __init__(self, num_envs: int):
        self.keys = np.zeros(num_envs, np.uint64)
        self.counters = np.zeros(num_envs, np.uint64)
        self._draw = 0  # draws made since the last next_step, all envs alike
        self._components: dict[tuple[int, ...], np.ndarray] = {}

    def reset(self, ids: np.ndarray, keys) -> None:
        """Give envs ``ids`` new keys and restart their counters."""
        self.keys[ids] = np.asarray(keys, np.uint64)
        self.counters[ids] = 0

    def next_step(self) -> None:
        """Advance every environment's counter (call once per env step)."""
        self.counters += np.uint64(1)
        self._draw = 0

    def bits(self, shape: tuple[int, ...]) -> np.ndarray:
        """Return uint64 hashes of shape (N, *shape), fresh for each call in a step."""
        comp = self._components.get(shape)
        if comp is None:  # component offsets, the same for every step
            n = int(np.prod(shape, dtype=np.int64))
            comp = np.arange(n, dtype=np.uint64).reshape(shape) * np.uint64(0xD1B54A32D192ED03)
            self._components[shape] = comp
        draw = np.uint64(self._draw)
        self._draw += 1
        # keys are already uniform 64-bit values: one mix of (key, step, draw)
        # gives the row's base, a second mix of (base + component) the draws.
        base = _splitmix64(self.keys + self.counters * _GOLDEN + (draw << np.uint64(48)))
        base = base.reshape((-1,) + (1,) * len(shape))
        return _splitmix64(base + comp)

    def uniform(self, shape: tuple[int, ...]) -> np.ndarray:
        """Return U[0, 1) draws of shape (N, *shape), float64 (53-bit)."""
        return (self.bits(shape) >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)

    def normal(self, shape: tuple[int, ...]) -> np.ndarray:
        """Return N(0, 1) draws of shape (N, *shape) (Box-Muller, the cosine half)."""
        return box_muller(self.uniform(shape), self.uniform(shape))[0]

    def state(self) -> dict[str, np.ndarray]:
        """Return the keys (N,), counters (N,) and this step's draw index () as copies."""
        return {"keys": self.keys.copy(), "counters": self.counters.copy(),
                "draw": np.array(self._draw, np.int64)}

    def restore(self, state) -> None:
        """Put the generator where ``state()`` saw it (arrays of its shapes and dtypes)."""
        self.keys = np.array(state["keys"], np.uint64)
        self.counters = np.array(state["counters"], np.uint64)
        self._draw = int(state["draw"])


# -- snapshots: seeds and generators as plain integer arrays ---------------------------
#: 64-bit words of a saved seed (seeds up to 2**256 - 1; SeedSequence takes any size).
SEED_WORDS = 4
#: columns of a saved Generator: present, PCG64 state (hi, lo), inc (hi, lo), has_uint32, uinteger.
GENERATOR_WORDS = 7
_WORD = (1 << 64) - 1


def seeds_array(seeds) -> np.ndarray:
    """Return (N, 1 + SEED_WORDS) uint64 rows: present, then each seed's words, low first.

    Raises a ValueError naming the seed that does not fit ``SEED_WORDS`` words.
    """
    out = np.zeros((len(seeds), 1 + SEED_WORDS), np.uint64)
    for i, seed in enumerate(seeds):
        if seed is None:
            continue
        if not 0 <= seed < 1 << (64 * SEED_WORDS):
            raise ValueError(f"seed {seed!r} of env {i} does not fit a snapshot: allowed "
                             f"[0, 2**{64 * SEED_WORDS})")
        out[i] = [1] + [(seed >> (64 * w)) & _WORD for w in range(SEED_WORDS)]
    return out


def seeds_from_array(rows: np.ndarray) -> list[int | None]:
    """Return the seeds of ``seeds_array`` rows (None where absent)."""
    return [sum(int(word) << (64 * w) for w, word in enumerate(row[1:])) if row[0] else None
            for row in rows]


def generators_array(rngs) -> np.ndarray:
    """Return (N, GENERATOR_WORDS) uint64 rows of PCG64 Generators (zeros where None)."""
    out = np.zeros((len(rngs), GENERATOR_WORDS), np.uint64)
    for i, rng in enumerate(rngs):
        if rng is None:
            continue
        state = rng.bit_generator.state
        if state["bit_generator"] != "PCG64":
            raise ValueError(f"generator of env {i} is {state['bit_generator']}: a snapshot "
                             "holds PCG64 only (env_rng's)")
        s, inc = state["state"]["state"], state["state"]["inc"]
        out[i] = [1, s >> 64, s & _WORD, inc >> 64, inc & _WORD, state["has_uint32"],
                  state["uinteger"]]
    return out


def generators_from_array(rows: np.ndarray) -> list[np.random.Generator | None]:
    """Return the Generators of ``generators_array`` rows, each exactly where it was saved."""
    rngs: list[np.random.Generator | None] = []
    for row in rows:
        if not row[0]:
            rngs.append(None)
            continue
        words = [int(w) for w in row]
        bit_generator = np.random.PCG64()
        bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": words[1] << 64 | words[2], "inc": words[3] << 64 | words[4]},
            "has_uint32": words[5], "uinteger": words[6]}
        rngs.append(np.random.Generator(bit_generator))
    return rngs
