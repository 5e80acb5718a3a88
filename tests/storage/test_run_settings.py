"""A run directory's recorded settings: the same run continues, another is refused by name."""

import json

import pytest

from rwrl.metrics.mean_interval import mean_interval
from rwrl.storage.run_settings import check_same_settings, json_bytes, recorded_settings


def test_the_same_settings_continue_and_tuples_equal_their_lists(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(json_bytes({"seed": 0, "sizes": [64, 16]}))
    check_same_settings(tmp_path, path, {"seed": 0, "sizes": (64, 16)})  # no error
    check_same_settings(tmp_path, tmp_path / "absent.json", {"seed": 1})  # nothing recorded yet


def test_other_settings_are_named_missing_keys_included(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(json_bytes({"seed": 0, "frames": 10, "old": 1}))
    with pytest.raises(ValueError, match=rf"^{tmp_path} holds a run with other settings "
                                         r"\(frames, new, old\): pick another --out$"):
        check_same_settings(tmp_path, path, {"seed": 0, "frames": 20, "new": 2})


def test_an_unreadable_record_is_named(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=rf"^{path}: unreadable"):
        recorded_settings(path)
    assert json.loads(json_bytes({"a": 1})) == {"a": 1} and json_bytes({}).endswith(b"\n")


def test_mean_interval_exact_values_and_its_edges():
    entry = mean_interval([1.0, 2.0, 3.0])  # s = 1, t(0.975, 2) = 4.302652729749464
    assert entry["mean"] == 2.0 and entry["std"] == 1.0 and entry["n"] == 3
    assert entry["ci_high"] == pytest.approx(2.0 + 4.302652729749464 / 3 ** 0.5, abs=1e-12)
    assert mean_interval([])["mean"] is None and mean_interval([])["n"] == 0
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\), got 1.5"):
        mean_interval([1.0, 2.0], confidence=1.5)
