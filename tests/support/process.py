"""A child process whose output lines can be awaited, one by one, with a bound."""

from __future__ import annotations

import queue
import re
import subprocess
import threading
import time

from tests.support.workers import ROOT


class LoggedProcess:
    """Runs ``argv`` from the repository root and keeps what it writes on stderr (or, with
    ``merged=True``, on stdout and stderr together) for :meth:`expect`."""

    def __init__(self, argv: list[str], env: dict[str, str], *, merged: bool = False) -> None:
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, text=True,
            stdout=subprocess.PIPE if merged else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if merged else subprocess.PIPE)
        self._stream = self.proc.stdout if merged else self.proc.stderr
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._stream is not None
        for line in self._stream:
            self.log.append(line)
            self.lines.put(line)

    def expect(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """Wait for an output line matching ``pattern`` (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(self.log)}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if m := re.search(pattern, line):
                return m

    def kill(self) -> None:
        """Kill it if it still runs."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
