"""The foreman daemon of this machine (``python -m blazing.foreman``, ``blazing foreman``).

The foreman is a Go program shipped inside the package; this module finds it
and runs it with the same flags, telling it to start workers with the Python
interpreter that ran this command.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn


def binary() -> Path:
    """Path of the shipped foreman binary."""
    return Path(__file__).resolve().parent.parent / "bin" / "blazing-foreman"


def exec_foreman(args: list[str], env: Mapping[str, str] | None = None) -> NoReturn:
    """Replace this process with the foreman run with ``args``, so signals reach it
    directly; exit 2 with a message if the binary is missing."""
    exe = binary()
    if not exe.exists():
        print(f"blazing foreman: {exe} is missing: the Go parts are not built. Run `make setup` "
              "or `pip install -e .` from the repository (needs Go).", file=sys.stderr)
        sys.exit(2)
    environ = dict(os.environ if env is None else env)
    environ.setdefault("BLAZING_FOREMAN_PYTHON", sys.executable)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(str(exe), [str(exe), *args], environ)
