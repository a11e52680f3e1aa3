"""``python -m blazing.foreman [flags]``: run this machine's foreman (see ``--help``)."""

from __future__ import annotations

import sys

from blazing.foreman import exec_foreman


def main() -> None:
    """Replace this process with the foreman, so signals reach it directly."""
    exec_foreman(sys.argv[1:])


if __name__ == "__main__":
    main()
