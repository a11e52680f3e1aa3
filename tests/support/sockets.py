"""What the kernel knows of TCP connections on this machine, read from /proc: how many
a server's port has open, and which client processes hold the other ends.

Every server in these tests listens on 127.0.0.1, so both ends of a connection are
in /proc/net/tcp: the server's (local port = the server's) and the client's (remote
port = the server's), whose socket inode leads to the process holding it.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable

ESTABLISHED = "01"


def _rows() -> list[list[str]]:
    rows = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                rows += [line.split() for line in f]
        except FileNotFoundError:
            continue
    return rows


def _port(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1], 16)


def server_connections(port: int) -> int:
    """Established connections the server on ``port`` has open (its side of them)."""
    return sum(1 for r in _rows() if r[3] == ESTABLISHED and _port(r[1]) == port)


def _inode_owners() -> dict[str, int]:
    owners: dict[str, int] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    owners[target[8:-1]] = int(pid)
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return owners


def client_connections(port: int) -> Counter[int]:
    """Established connections to ``port``, counted by the pid of the client holding them."""
    inodes = [r[9] for r in _rows() if r[3] == ESTABLISHED and _port(r[2]) == port]
    if not inodes:
        return Counter()
    owners = _inode_owners()
    return Counter(owners[i] for i in inodes if i in owners)


def clients_by_port(ports: list[int]) -> dict[int, Counter[int]]:
    """:func:`client_connections` of several ports at once (one pass over /proc)."""
    rows = [r for r in _rows() if r[3] == ESTABLISHED]
    wanted = {p: [r[9] for r in rows if _port(r[2]) == p] for p in ports}
    owners = _inode_owners() if any(wanted.values()) else {}
    return {p: Counter(owners[i] for i in inodes if i in owners)
            for p, inodes in wanted.items()}


class PeakSampler:
    """Samples, in a thread, the connections each client process holds to each port,
    keeping the highest count seen per (port, pid) until stopped."""

    def __init__(self, ports: list[int], every: float = 0.02) -> None:
        self.ports = ports
        self.every = every
        self.peaks: dict[int, Counter[int]] = {p: Counter() for p in ports}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="peak-sampler", daemon=True)

    def _main(self) -> None:
        while not self._stop.is_set():
            for port, counts in clients_by_port(self.ports).items():
                for pid, n in counts.items():
                    self.peaks[port][pid] = max(self.peaks[port][pid], n)
            self.samples += 1
            self._stop.wait(self.every)  # the sampling period

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` (bounded) until it holds; raise naming ``what`` if it never does."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"after {timeout} s: {what}")
        time.sleep(0.02)  # polling a count another process changes: no event to wait on


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...)."""
    parents: dict[int, list[int]] = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(p))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def require_servers() -> bool:
    """Whether a missing server program must fail (CI) rather than skip: the switch the
    Redis tests use (BLAZING_REQUIRE_REDIS=1 or CI=true), or BLAZING_REQUIRE_SERVERS=1."""
    return (os.environ.get("BLAZING_REQUIRE_SERVERS") == "1"
            or os.environ.get("BLAZING_REQUIRE_REDIS") == "1"
            or os.environ.get("CI") == "true")
