"""What every system adapter in benchmarks/peers/systems/ shares.

An adapter is a script run as

    <python> -m systems.<name>_bench --redis URL --workload W --n N [--variant V]

(<python> is benchmarks/peers/.venvs/<name>/bin/python for a peer, the project's .venv for us)

with the working directory benchmarks/peers/ (so `systems.*` modules import and worker
processes can import the adapter's task module). It starts its own two worker processes,
runs one workload on an already-flushed Redis, stops every process it started (also on
error), and prints exactly one JSON object as its last stdout line (see `emit`).

Workloads (W) and the figure each reports:
  enqueue    one producer submits N no-op tasks, no worker running     {"per_s"}
  drain      N no-op tasks queued, then 2 workers start; timed from the first
             result of a sentinel task queued before them to the last result  {"per_s"}
  latency    N sequential submit-to-result round trips, 2 idle workers  {"p50_ms","p99_ms"}
  pipelines  N 3-step pipelines in flight at once, 2 warm workers       {"per_s"}
  loss       N tasks of 20 ms while one worker process is SIGKILLed and restarted
             every second; {"lost","duplicated","kills"} counted from the
             executions each task records with `record_execution`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

WORKLOADS = ("enqueue", "drain", "latency", "pipelines", "loss")
PEERS_DIR = Path(__file__).resolve().parent
# Hash where loss-workload tasks count their executions: field = task number.
EXEC_KEY = "peersbench:exec"
TASK_SECONDS = 0.020  # the loss workload's task length
KILL_EVERY = 1.0  # seconds between SIGKILLs in the loss workload
# In the loss workload every system runs ONE task at a time per worker process (Celery
# solo, RQ, arq max_jobs=1, Dramatiq --threads 1, Taskiq --max-async-tasks 1, ours
# --concurrency 1): with default concurrency some systems finish 2,000 tasks of 20 ms
# within the first second, before any kill, and the row would prove nothing.
LOSS_CONCURRENCY = 1
SETTLE_SECONDS = 60.0  # after the last kill, how long unfinished tasks may take before counted lost


def progress(msg: str) -> None:
    """Progress to stderr (stdout carries the result)."""
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line every adapter takes."""
    p = argparse.ArgumentParser()
    p.add_argument("--redis", required=True, help="redis:// URL of the shared redis-server")
    p.add_argument("--workload", required=True, choices=WORKLOADS)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--variant", default="default", help="e.g. 'durable' for a second row")
    return p.parse_args(argv)


def emit(system: str, variant: str, workload: str, **figures: Any) -> None:
    """Print the adapter's one result line (JSON) to stdout."""
    print(json.dumps({"system": system, "variant": variant, "workload": workload, **figures}),
          flush=True)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    i = min(len(sorted_values) - 1, max(0, int(round(q * len(sorted_values) + 0.5)) - 1))
    return sorted_values[i]


def latency_figures(seconds: list[float]) -> dict[str, float]:
    """p50/p99 in milliseconds."""
    s = sorted(seconds)
    return {"p50_ms": percentile(s, 0.50) * 1e3, "p99_ms": percentile(s, 0.99) * 1e3}


class Workers:
    """Two (or `count`) worker processes started from one command line, each in its own
    process group so a SIGKILL takes the whole worker (pool children included)."""

    def __init__(self, argv_for: Callable[[int], list[str]], *, count: int = 2,
                 env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.argv_for = argv_for  # worker index -> argv
        self.count = count
        self.env = {**os.environ, **(env or {})}
        self.log = log or PEERS_DIR / ".logs" / "workers.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count

    def start(self, index: int | None = None) -> None:
        """Start all workers, or the one at `index`."""
        for i in range(self.count) if index is None else [index]:
            with open(self.log, "ab") as log:
                self.procs[i] = subprocess.Popen(
                    self.argv_for(i), cwd=PEERS_DIR, env=self.env, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, index: int) -> None:
        """SIGKILL worker `index` and its process group, and reap it."""
        p = self.procs[index]
        if p is None:
            return
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(30)
        self.procs[index] = None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every worker group; SIGKILL what is left after `grace` seconds."""
        for p in self.procs:
            if p is not None and p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for i, p in enumerate(self.procs):
            if p is None:
                continue
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            self.kill(i)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Killer:
    """Every KILL_EVERY seconds, SIGKILLs one worker (alternating) and starts it again,
    until stopped. Runs in a thread of the adapter process."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.kills = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="killer", daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.wait(KILL_EVERY):
            idx = i % self.workers.count
            self.workers.kill(idx)
            self.kills += 1
            self.workers.start(idx)
            i += 1

    def __enter__(self) -> Killer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def record_execution(redis_client: Any, task_no: int) -> None:
    """Called by a loss-workload task (sync redis-py client) when it finishes its work."""
    redis_client.hincrby(EXEC_KEY, str(task_no), 1)


async def record_execution_async(redis_client: Any, task_no: int) -> None:
    """The same for async tasks (redis.asyncio client)."""
    await redis_client.hincrby(EXEC_KEY, str(task_no), 1)


def loss_counts(redis_client: Any, n: int) -> dict[str, int]:
    """Tasks never run (lost) and run more than once (duplicated), from EXEC_KEY."""
    counts = {int(k): int(v) for k, v in redis_client.hgetall(EXEC_KEY).items()}
    lost = sum(1 for i in range(n) if counts.get(i, 0) == 0)
    duplicated = sum(1 for v in counts.values() if v > 1)
    return {"lost": lost, "duplicated": duplicated}


def wait_loss_settled(redis_client: Any, n: int, settle: float = SETTLE_SECONDS) -> None:
    """After the kills end: wait until every task has run or `settle` seconds pass."""
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        if redis_client.hlen(EXEC_KEY) >= n:
            return
        time.sleep(0.05)  # polling a Redis hash other processes fill: nothing to wait on


def wait_done_or_stalled(redis_client: Any, n: int, stall: float = 5.0,
                         limit: float = 600.0) -> None:
    """During the kills: return once every task has run, or no new task has finished for
    `stall` seconds (the rest may be lost), or after `limit` seconds."""
    end = time.monotonic() + limit
    last, last_change = -1, time.monotonic()
    while time.monotonic() < end:
        done = redis_client.hlen(EXEC_KEY)
        if done >= n:
            return
        if done != last:
            last, last_change = done, time.monotonic()
        elif time.monotonic() - last_change > stall:
            return
        time.sleep(0.05)  # polling a Redis hash other processes fill: nothing to wait on


class RespClient:
    """A minimal synchronous Redis client (RESP2 over one socket) with the few commands the
    harness needs, so the harness and our adapter need no redis-py. Peers' adapters may
    use it or redis-py: the helpers above take either."""

    def __init__(self, url: str) -> None:
        u = urlparse(url)
        self.sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), 10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = self.sock.makefile("rb")
        if u.path and u.path.strip("/"):
            self.call("SELECT", u.path.strip("/"))

    def call(self, *args: Any) -> Any:
        """Send one command and return its decoded reply (errors raise RuntimeError)."""
        parts = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(parts))
        return self._read()

    def _read(self) -> Any:
        line = self.buf.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.buf.read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RuntimeError(f"unexpected reply from Redis: {line!r}")

    def hincrby(self, key: str, field: str, amount: int) -> int:
        """HINCRBY."""
        return self.call("HINCRBY", key, field, amount)

    def hlen(self, key: str) -> int:
        """HLEN."""
        return self.call("HLEN", key)

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        """HGETALL as a dict."""
        flat = self.call("HGETALL", key)
        return dict(zip(flat[::2], flat[1::2], strict=True))

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def wait_keys_exist(redis_client: Any, keys: Sequence[str | bytes], *, interval: float = 0.002,
                    timeout: float = 600.0, batch: int = 500) -> int:
    """Wait until every key in `keys` exists (e.g. one result key per task); return how many
    are still missing when `timeout` passes (0 = all there). `redis_client` is a synchronous
    redis-py client. Keys are checked in order with pipelined EXISTS, a window at a time, so
    the cost to Redis stays small while workers fill it; sleeps `interval` only while the
    front of the window is still missing (results mostly arrive in submission order)."""
    pending = list(keys)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        window, rest = pending[:batch], pending[batch:]
        pipe = redis_client.pipeline(transaction=False)
        for k in window:
            pipe.exists(k)
        missing = [k for k, there in zip(window, pipe.execute(), strict=True) if not there]
        pending = missing + rest
        if missing:
            time.sleep(interval)  # results are written by other processes: poll
    return len(pending)


def measure_loss(system: str, args: argparse.Namespace, workers: Workers, redis_client: Any,
                 after: Callable[[], dict[str, Any]] | None = None) -> None:
    """The loss workload once its tasks are queued and the workers started: kill and
    restart workers until the tasks are done or stalled, let stragglers settle, count
    lost and duplicated executions, and emit them, with the figures `after()` adds
    (e.g. Taskiq's still-pending messages). The loop's blocking waits are fine in an
    async adapter's event-loop thread: its client is idle meanwhile."""
    n = args.n
    with Killer(workers) as killer:
        wait_done_or_stalled(redis_client, n)
    wait_loss_settled(redis_client, n)
    counts = loss_counts(redis_client, n)
    extra = after() if after is not None else {}
    progress(f"{system}/{args.variant} loss: {counts} {extra} after {killer.kills} kills; "
             f"{redis_client.hlen(EXEC_KEY)} of {n} tasks ran")
    emit(system, args.variant, args.workload, kills=killer.kills, **counts, **extra)


T = TypeVar("T")
ENQUEUE_CHUNK = 1000  # an async producer's submissions in flight at once


async def gather_chunked(calls: Iterable[Callable[[], Awaitable[T]]],
                         chunk: int = ENQUEUE_CHUNK) -> list[T]:
    """Await the calls `chunk` at a time (one producer, many requests in flight): how
    the async clients (arq, Taskiq) submit in the enqueue and pipelines workloads."""
    out: list[T] = []
    batch: list[Callable[[], Awaitable[T]]] = []
    for c in calls:
        batch.append(c)
        if len(batch) == chunk:
            out += await asyncio.gather(*(b() for b in batch))
            batch = []
    if batch:
        out += await asyncio.gather(*(b() for b in batch))
    return out


WARMUP = 20  # untimed round trips first: workers up, connections made, code paths run


def time_round_trips(round_trip: Callable[[int], Any], n: int) -> dict[str, float]:
    """The latency workload: `round_trip(i)` (submit task i and wait for its result)
    for i in -WARMUP..n-1, one after the other; the n with i >= 0 are timed."""
    lat = []
    for i in range(-WARMUP, n):
        t = time.perf_counter()
        round_trip(i)
        if i >= 0:
            lat.append(time.perf_counter() - t)
    return latency_figures(lat)


async def time_round_trips_async(round_trip: Callable[[int], Awaitable[Any]],
                                 n: int) -> dict[str, float]:
    """time_round_trips for async clients."""
    lat = []
    for i in range(-WARMUP, n):
        t = time.perf_counter()
        await round_trip(i)
        if i >= 0:
            lat.append(time.perf_counter() - t)
    return latency_figures(lat)
