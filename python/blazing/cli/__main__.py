"""``python -m blazing.cli``: the console script."""

import sys

from blazing.cli import main

sys.exit(main())
