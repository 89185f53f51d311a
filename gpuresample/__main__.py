"""``python -m gpuresample``: the ``gpuresample`` command (see :mod:`gpuresample.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
