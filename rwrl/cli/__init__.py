"""The ``rwrl`` command: ``app`` (typer) and ``main``, one file per command group.

``app.py`` builds the command and registers the groups (``run.py``: run, report,
policies; ``sweep.py``: sweep; ``data.py``: data; ``ope.py``: ope;
``bandits.py``: bandits), each importing its
layer only when its command runs.
"""

from rwrl.cli.app import app, main

__all__ = ["app", "main"]
