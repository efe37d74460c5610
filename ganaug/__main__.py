"""``python -m ganaug``: the same as the ``ganaug`` command."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="ganaug")
