"""A real foreman process (python -m blazing.foreman) whose log lines can be awaited."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

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


# A foreman whose optimizer may move 2+2 workers (each lane 1..3) every half second.
OPTIMIZING = ("--async-workers", "2", "--blocking-workers", "2",
              "--min-async", "1", "--max-async", "3", "--min-blocking", "1",
              "--max-blocking", "3", "--async-concurrency", "2",
              "--blocking-concurrency", "1", "--optimization-interval", "0.5")


def cpu_then_io_bursts(fm: Foreman, client: Any, back_to: str = r"\d async \+ \d blocking") -> None:
    """Drive ``fm`` (started with :data:`OPTIMIZING`, serving ``tests.apps.durable``)
    through a CPU-heavy burst, which must move its workers to 1 async + 3 blocking,
    then an I/O-heavy burst, which must move them to a mix matching ``back_to``; every
    result is checked."""
    fm.expect(r"started worker.*lane=blocking")
    cpu = [client.burn(40) for _ in range(160)]
    fm.expect(r"optimizer moves workers.*to=\"1 async \+ 3 blocking\"", timeout=60)
    assert all(h.result_sync(timeout=120) > 0 for h in cpu)
    io = [client.wait_io(100) for _ in range(400)]
    fm.expect(rf"optimizer moves workers.*to=\"{back_to}\"", timeout=60)
    assert [h.result_sync(timeout=120) for h in io] == [100] * 400
