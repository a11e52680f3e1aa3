"""The foreman daemon of this machine (``python -m blazing.foreman``).

The foreman is a Go program shipped inside the package; this module finds it
and runs it with the same flags, telling it to start workers with the Python
interpreter that ran this command.
"""

from __future__ import annotations

from pathlib import Path


def binary() -> Path:
    """Path of the shipped foreman binary."""
    return Path(__file__).resolve().parent.parent / "bin" / "blazing-foreman"
