"""dm_env's own conformance suite, for every task."""

import unittest

from dm_env import test_utils

import rwrl
from rwrl.domains import available_tasks


def _make_case(domain: str, task: str) -> type:
    def make_object_under_test(self):
        # a short time limit so that the suite sees LAST and FIRST steps
        return rwrl.load(domain, task, seed=0, time_limit=30)

    return type(f"DmEnv_{domain}_{task}", (test_utils.EnvironmentTestMixin, unittest.TestCase),
                {"make_object_under_test": make_object_under_test})


for _domain, _task in available_tasks():
    _case = _make_case(_domain, _task)
    globals()[f"Test{_case.__name__}"] = _case
