"""``python -m rwrl.cli``: the ``rwrl`` command."""

from rwrl.cli.app import main

main()
