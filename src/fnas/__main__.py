"""``python -m fnas``: the ``fnas`` command."""

import sys

from fnas.cli import main

sys.exit(main())
