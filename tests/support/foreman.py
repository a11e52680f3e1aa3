"""A real foreman process (python -m blazing.foreman) whose log lines can be awaited."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.support.process import LoggedProcess
from tests.support.workers import ROOT


class Foreman(LoggedProcess):
    """One foreman process; its stderr is kept and can be waited on, line by line."""

    def __init__(self, *args: str, secret: str, env: dict[str, str] | None = None) -> None:
        super().__init__(
            [sys.executable, "-m", "blazing.foreman", *args],
            {**os.environ, "PYTHONPATH": str(ROOT), "BLAZING_SECRET": secret, **(env or {})})

    def close(self) -> None:
        """SIGTERM (the workers drain), then SIGKILL if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
