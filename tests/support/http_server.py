"""The connector tests' HTTP server (tests/support/asgi_app.py) under uvicorn, in a
subprocess on a free loopback port; its request log is a file that outlives restarts."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Request:
    """One request as the server logged it."""

    at: float  # the server's time.monotonic()
    client_port: int
    pid: str  # the X-Client-Pid header, "-" without one
    path: str
    auth: str  # the Authorization scheme, "-" without one


class HTTPServer:
    """Starts, restarts and stops ``uvicorn tests.support.asgi_app:app``."""

    def __init__(self) -> None:
        try:
            import uvicorn  # noqa: F401
        except ImportError:
            raise RuntimeError("uvicorn is not installed (pip install -e '.[test]')") from None
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="blazing-http-"))
        self.requests_log = self.dir / "requests.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start uvicorn and wait (bounded) until it accepts connections."""
        cmd = [sys.executable, "-m", "uvicorn", "tests.support.asgi_app:app",
               "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
               "--no-access-log", "--timeout-keep-alive", "120", "--lifespan", "on"]
        env = {"BLAZING_TEST_HTTP_LOG": str(self.requests_log), "PYTHONPATH": str(ROOT),
               "PATH": "/usr/bin:/bin"}
        with open(self.dir / "uvicorn.log", "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {(self.dir / 'uvicorn.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("uvicorn did not listen within 30 s") from None
                time.sleep(0.02)  # polling a starting server: no event to wait on

    def stop(self) -> None:
        """SIGKILL the server: its connections drop at once, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        """Kill and start again on the same port (the request log goes on)."""
        self.stop()
        self.start()

    def requests(self) -> list[Request]:
        """Every request logged so far, by every run of the server."""
        if not self.requests_log.exists():
            return []
        out = []
        for line in self.requests_log.read_text().splitlines():
            at, port, pid, path, auth = line.split(" ")
            out.append(Request(float(at), int(port), pid, path, auth))
        return out

    def clear(self) -> None:
        """Forget the requests logged so far."""
        self.requests_log.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop and remove the temp dir."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> HTTPServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
