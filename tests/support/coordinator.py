"""A Unix-socket rendezvous between a test and steps running in worker processes.

A step calls :func:`checkpoint` with a label: it connects, says the label and
its pid, and blocks until the test releases it. The test sees each arrival with
:meth:`Coordinator.arrival` (a bounded wait), may kill the worker at that very
moment, and releases a step with :meth:`Arrival.release`. No sleeps anywhere.
"""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Arrival:
    """A step waiting at a checkpoint."""

    label: str
    pid: int
    conn: socket.socket

    def release(self) -> None:
        """Let the step go on."""
        try:
            self.conn.sendall(b"g")
        finally:
            self.conn.close()


class Coordinator:
    """The test's side: a listening Unix socket."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="blazing-coord-"))
        self.path = str(self.dir / "sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(128)

    def arrival(self, timeout: float = 30.0) -> Arrival:
        """Wait for the next step to reach a checkpoint."""
        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        conn.settimeout(timeout)
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(256)
            if not chunk:
                raise ConnectionError("a step hung up before saying who it is")
            data += chunk
        label, pid = data.decode().split()
        return Arrival(label, int(pid), conn)

    def close(self) -> None:
        """Stop listening."""
        self.sock.close()
        try:
            os.unlink(self.path)
            self.dir.rmdir()
        except OSError:
            pass


def checkpoint(label: str) -> None:
    """Called by a step: announce ``label`` and block until released.

    Does nothing unless BLAZING_TEST_COORD names the socket.
    """
    path = os.environ.get("BLAZING_TEST_COORD")
    if not path:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(f"{label} {os.getpid()}\n".encode())
        s.recv(1)
