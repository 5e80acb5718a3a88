import numpy as np
import pandas as pd

import rwrl


def test_log_output_writes_one_row_per_episode(tmp_path):
    path = tmp_path / "episodes.jsonl"
    env = rwrl.load("cartpole", "realworld_balance", seed=0, time_limit=20, log_output=str(path))
    total = 0.0
    violations = np.zeros(3)
    env.reset()
    for _ in range(20):
        ts = env.step([1.0])  # a full push accelerates the cart beyond balance's 10·c m/s²
        total += ts.reward
        violations += ~env.info["constraints"][0]
    assert ts.last()
    env.step([0.0])  # starts the next episode
    rows = pd.read_json(path, lines=True)
    assert len(rows) == 1
    assert rows["length"][0] == 20 and abs(rows["return"][0] - total) < 1e-9
    assert violations.sum() > 0
    for name, count in zip(env.constraint_names, violations):
        assert rows[f"violations/{name}"][0] == count
