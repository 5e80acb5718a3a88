"""``python -m rwrl.cli``: the ``rwrl`` command."""

from rwrl.cli.app import main

if __name__ == "__main__":
    main()
