"""``python -m nnlearn``: the same command line as the ``nnlearn`` script."""

import sys

from .cli import main

sys.exit(main())
