"""The imitation student: learns a teacher's rule, its auxiliary heads, its budget guard, save/load."""

import numpy as np
import pytest

from rwrl.video.student import Student, StudentConfig, train_student


def teacher_data(n=2000, seed=0):
    """A made-up teacher: QP = 20 + 10 * round(obs0 > 0) + round(5 * obs1), bits = 2^(20 - qp/6)."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    qp = (20 + 10 * (obs[:, 0] > 0) + np.clip(np.round(2 * obs[:, 1]), -3, 3)).astype(int)
    bits = 2.0 ** (20 - qp / 6 + 0.5 * obs[:, 2])
    return {"obs": obs, "qp": qp, "bits": bits, "psnr": 60 - qp * 0.6}


CONFIG = StudentConfig(hidden=(64, 64), steps=800, seed=0)


@pytest.fixture(scope="module")
def student():
    return train_student(teacher_data(), CONFIG)


def test_the_student_learns_the_teachers_qps_and_the_encoders_outcomes(student):
    held_out = teacher_data(500, seed=1)
    qps = student.act(held_out["obs"], guard=False)
    assert np.mean(qps == held_out["qp"]) > 0.85
    assert np.mean(np.abs(qps - held_out["qp"]) <= 1) > 0.95
    _, bits, quality = student.predict(held_out["obs"])
    rows = np.arange(500)
    seen = held_out["qp"]
    assert np.median(np.abs(np.log2(bits[rows, seen]) - np.log2(held_out["bits"]))) < 0.15
    assert np.median(np.abs(quality[rows, seen] - held_out["psnr"])) < 0.3
    assert student.history[-1]["accuracy"] > student.history[0]["accuracy"]


def test_the_guard_raises_the_qp_until_the_predicted_bits_fit(student):
    obs = teacher_data(50, seed=2)["obs"]
    free = student.act(obs, guard=False)
    plenty = student.act(obs, bits_left=np.full(50, 1e12), frames_left=np.full(50, 10))
    assert np.array_equal(free, plenty)
    _, bits, _ = student.predict(obs)
    tight = bits[np.arange(50), free] * 0.5 + 9 * bits[:, -1]  # half of what the free QP costs
    guarded = student.act(obs, bits_left=tight, frames_left=np.full(50, 10))
    assert np.all(guarded >= free) and np.any(guarded > free)
    allowance = tight - 9 * bits[:, -1]
    fitted = guarded < 51
    assert np.all(bits[np.arange(50), guarded][fitted] <= allowance[fitted])
    with pytest.raises(ValueError, match="bits_left and frames_left"):
        student.act(obs)


def test_a_saved_student_acts_as_the_trained_one(student, tmp_path):
    student.save(tmp_path / "student.npz")
    loaded = Student.load(tmp_path / "student.npz")
    obs = teacher_data(100, seed=3)["obs"]
    assert np.array_equal(loaded.act(obs, guard=False), student.act(obs, guard=False))
    assert loaded.config == student.config


def test_training_is_reproducible_from_its_seed():
    data = teacher_data(300)
    config = StudentConfig(hidden=(16,), steps=50, seed=4)
    first, again = train_student(data, config), train_student(data, config)
    assert first.history == again.history


def test_bad_training_input_is_refused_in_one_line():
    data = teacher_data(10)
    with pytest.raises(ValueError, match=r"qp is not allowed: 10 integers in \[0, 51\]"):
        train_student({**data, "qp": data["qp"] + 40})
    with pytest.raises(ValueError, match="steps 0 is not allowed"):
        StudentConfig(steps=0)


def test_the_guard_leaves_the_frames_outside_its_mask_alone(student):
    obs = teacher_data(20, seed=5)["obs"]
    free = student.act(obs, guard=False)
    starved = student.act(obs, bits_left=np.zeros(20), frames_left=np.full(20, 5))
    assert np.all(starved == 51)
    mask = np.arange(20) % 2 == 0
    masked = student.act(obs, bits_left=np.zeros(20), frames_left=np.full(20, 5), guard_mask=mask)
    assert np.array_equal(masked[mask], starved[mask]) and np.array_equal(masked[~mask], free[~mask])
