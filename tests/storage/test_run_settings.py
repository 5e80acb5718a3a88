"""A run directory's recorded settings: the same run continues, another is refused by name."""

import json

import pytest

from rwrl.storage.run_settings import check_same_settings, json_bytes, recorded_settings


def test_the_same_settings_continue_and_tuples_equal_their_lists(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(json_bytes({"seed": 0, "sizes": [64, 16]}))
    check_same_settings(tmp_path, "config.json", {"seed": 0, "sizes": (64, 16)})  # no error
    check_same_settings(tmp_path, "absent.json", {"seed": 1})  # nothing recorded yet


def test_other_settings_are_named_missing_keys_included(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(json_bytes({"seed": 0, "frames": 10, "old": 1}))
    with pytest.raises(ValueError, match=rf"^{tmp_path} holds a run with other settings "
                                         r"\(frames, new, old\): pick another --out$"):
        check_same_settings(tmp_path, "config.json", {"seed": 0, "frames": 20, "new": 2})


def test_an_unreadable_record_is_named(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=rf"^{path}: unreadable"):
        recorded_settings(path)
    assert json.loads(json_bytes({"a": 1})) == {"a": 1} and json_bytes({}).endswith(b"\n")

