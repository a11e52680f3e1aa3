"""Waiting for a line in a log file that other processes write."""

from __future__ import annotations

import re
import time
from pathlib import Path


def wait_for_line(path: Path, pattern: str, timeout: float = 60) -> str:
    """Wait (bounded) until a line of the log file matches ``pattern``; return that line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        for line in text.splitlines():
            if re.search(pattern, line):
                return line
        time.sleep(0.1)  # the log is written by other processes: read it again
    text = path.read_text(errors="replace") if path.exists() else "(no such file)"
    raise AssertionError(f"no line matching {pattern!r} in {path}:\n{text[-4000:]}")
