"""``python -m isolate``: the ``isolate`` command (see :mod:`isolate.cli`)."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="isolate")
