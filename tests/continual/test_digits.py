"""The digits task sequences: sizes, the permutations, the class split, and bad input in one line."""

import numpy as np
import pytest

from rwrl.continual import digits


def test_permuted_tasks_show_the_same_images_through_fixed_pixel_orders():
    tasks = digits.permuted_digits(num_tasks=3, perm_seed=0)
    assert [t.name for t in tasks] == ["permuted-0", "permuted-1", "permuted-2"]
    assert tasks[0].x_train.shape == (1257, 64) and tasks[0].x_test.shape == (540, 64)
    order = digits.permutations(3, 0)[1]
    np.testing.assert_array_equal(tasks[1].x_train, tasks[0].x_train[:, order])
    np.testing.assert_array_equal(tasks[1].y_test, tasks[0].y_test)
    assert sorted(order) == list(range(64)) and not np.array_equal(order, np.arange(64))
    np.testing.assert_array_equal(digits.permutations(3, 0), digits.permutations(3, 0))
    assert tasks[0].x_train.dtype == np.float32 and 0.0 <= tasks[0].x_train.min() <= tasks[0].x_train.max() <= 1.0


def test_split_tasks_hold_their_classes_only_and_cover_every_image_once():
    tasks = digits.split_digits()
    assert [t.classes for t in tasks] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    for t in tasks:
        assert set(np.unique(t.y_train)) == set(t.classes) == set(np.unique(t.y_test))
    assert sum(len(t.y_train) for t in tasks) == 1257 and sum(len(t.y_test) for t in tasks) == 540


@pytest.mark.parametrize("call, message", [
    (lambda: digits.permuted_digits(num_tasks=0), "num_tasks = 0 is not allowed"),
    (lambda: digits.split_digits(classes=((0, 1), (1, 2))), "each in one group"),
    (lambda: digits.split_digits(classes=((0, 10),)), "labels must be 0..9"),
    (lambda: digits.load(test_fraction=1.5), "test_fraction = 1.5 is not allowed"),
])
def test_bad_input_is_one_line(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call()
    assert "\n" not in str(error.value)
