"""A web server of an example (uvicorn, Django's or Flask's dev server) in a subprocess on
a free loopback port: started, waited for until its health URL answers, stopped with
SIGTERM as an operator would (SIGKILL if it does not exit), its output kept for failures."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def example_env(extra: dict[str, str] | None = None, cwd: Path = EXAMPLES) -> dict[str, str]:
    """The environment an example runs in: this tree's package first on the path, then the
    example's own directory, and no Blazing settings but the ones given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLAZING_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "python"), str(cwd), str(ROOT)])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class WebServer:
    """One server process; ``url`` is its base URL."""

    def __init__(self, argv: list[str], *, cwd: Path, env: dict[str, str], log: Path,
                 port: int | None = None, health: str = "/health") -> None:
        self.port = port or free_port()
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.cwd, self.env, self.log_path, self.health = cwd, env, log, health
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 60.0) -> WebServer:
        """Start it and wait (bounded) until its health URL answers 200."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv[:4]} exited with {self.proc.returncode}:\n"
                                   f"{self.output()}")
            try:
                with urllib.request.urlopen(self.url + self.health, timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.argv[:4]} did not answer within {timeout} s:\n"
                                   f"{self.output()}")
            time.sleep(0.05)  # polling a starting server: no event to wait on

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM its process group (uvicorn's workers too); SIGKILL past ``timeout``.
        Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything of its group left behind
        except ProcessLookupError:
            pass
        return self.proc.returncode

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
