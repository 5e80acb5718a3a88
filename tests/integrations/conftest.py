"""The integration recipes: each test needs its framework (the ``integrations`` extra) and is
skipped with a reason where it is absent; all run only with ``-m integrations``."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integrations/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integrations)
