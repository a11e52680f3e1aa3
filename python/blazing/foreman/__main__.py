"""``python -m blazing.foreman [flags]``: run this machine's foreman (see ``--help``)."""

from __future__ import annotations

import os
import sys

from blazing.foreman import binary


def main() -> None:
    """Replace this process with the foreman, so signals reach it directly."""
    exe = binary()
    if not exe.exists():
        print(f"blazing.foreman: {exe} is missing: the Go parts are not built. Run `make setup` "
              "or `pip install -e .` from the repository (needs Go).", file=sys.stderr)
        sys.exit(2)
    env = dict(os.environ)
    env.setdefault("BLAZING_FOREMAN_PYTHON", sys.executable)
    os.execve(str(exe), [str(exe), *sys.argv[1:]], env)


if __name__ == "__main__":
    main()
