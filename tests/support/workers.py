"""Real worker processes (python -m blazing.worker) for end-to-end tests."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """One worker process."""

    def __init__(self, proc: subprocess.Popen[bytes], kind: str) -> None:
        self.proc = proc
        self.kind = kind

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the worker prints its ready line (bounded)."""
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        buf = b""
        try:
            while b"blazing.worker ready" not in buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise TimeoutError(f"worker {self.pid} not ready after {timeout} s: {buf!r}")
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(
                        f"worker {self.pid} exited ({self.proc.wait()}) before ready: {buf!r}")
                buf += chunk
        finally:
            sel.close()

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM; wait for it to exit; return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


class WorkerFleet:
    """Starts workers of one app against one Redis namespace; kills them all at the end."""

    def __init__(self, env: dict[str, str], log: Path,
                 app: str = "tests.apps.durable:app") -> None:
        # This checkout's package first, whatever an editable install points at.
        self.env = {**os.environ, **env, "PYTHONPATH": f"{ROOT / 'python'}{os.pathsep}{ROOT}"}
        self.app = app
        self.workers: list[Worker] = []
        self.log_path = log
        self._log = open(log, "ab")  # noqa: SIM115 - closed in close()

    def start(self, kind: str, concurrency: int | None = None, wait: bool = True,
              extra_env: dict[str, str] | None = None) -> Worker:
        """Start one worker (and wait until it serves, unless ``wait`` is False)."""
        cmd = [sys.executable, "-m", "blazing.worker", "--app", self.app, "--type", kind]
        if concurrency:
            cmd += ["--concurrency", str(concurrency)]
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**self.env, **(extra_env or {})},
                                stdout=subprocess.PIPE, stderr=self._log)
        w = Worker(proc, kind)
        self.workers.append(w)
        if wait:
            w.wait_ready()
        return w

    def alive(self) -> list[Worker]:
        """Workers still running."""
        return [w for w in self.workers if w.proc.poll() is None]

    def close(self) -> None:
        """Kill every worker still running."""
        for w in self.workers:
            w.kill()
        self._log.close()
