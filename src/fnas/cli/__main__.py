"""``python -m fnas.cli``: the ``fnas`` command."""

import sys

from fnas.cli import main

sys.exit(main())
