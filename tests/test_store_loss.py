"""A Redis that loses its data, or its memory, with runs in flight: every waiter ends.

Real redis-server processes (one per test, so that each can be killed, restarted
empty or starved of memory), real worker processes, real clients. Each test
checks that work is in flight when the store fails, then that every handle ends
within a bound: with its right result, or with the typed error that says what
happened (RunLost, StoreFull), never silence.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from blazing.errors import RunLost, StoreFull
from tests.apps.durable import make_app
from tests.support.redis_server import RedisServer
from tests.support.workers import WorkerFleet

pytestmark = pytest.mark.timeout(240)

SECRET = "loss-secret"
RUNS = 400
# Leases short enough that work cut off by the failure is recovered in seconds.
TIMING = {"BLAZING_LEASE_SECONDS": "2", "BLAZING_HEARTBEAT_SECONDS": "0.5"}


def finished(handle) -> bool:
    """Whether a run's outcome is known now (without waiting)."""
    try:
        handle.wait_sync(timeout=0)
    except TimeoutError:
        return False
    return True


def wait_until_in_flight(handles: list, at_least: int, timeout: float = 60) -> int:
    """Wait until ``at_least`` runs have finished; return how many are still in flight."""
    for h in handles[:at_least]:
        h.wait_sync(timeout=timeout)
    return sum(not finished(h) for h in handles)


def outcomes(handles: list, timeout: float) -> Counter:
    """Wait for every handle (bounded) and count how each ended; a wrong result fails."""
    counts: Counter = Counter()
    deadline = time.monotonic() + timeout
    for i, h in enumerate(handles):
        try:
            value = h.result_sync(timeout=max(deadline - time.monotonic(), 0.1))
        except RunLost as exc:
            assert h.unit_id in str(exc), exc
            counts["lost"] += 1
        except TimeoutError:
            counts["no answer"] += 1
        else:
            assert value == i + 3, f"run {i} returned {value}"
            counts["ok"] += 1
    return counts


@pytest.fixture
def ns() -> str:
    return "loss" + uuid.uuid4().hex[:8]


def start(redis: RedisServer, ns: str, tmp_path: Path):
    """Two async workers (20 ms steps, so the load lasts) and a client on ``redis``."""
    fleet = WorkerFleet({"BLAZING_REDIS_URL": redis.url, "BLAZING_NAMESPACE": ns,
                         "BLAZING_SECRET": SECRET, "BLAZING_TEST_STEP_MS": "20", **TIMING},
                        log=tmp_path / "workers.log")
    client = make_app(redis_url=redis.url, namespace=ns, local_workers=False, secret=SECRET,
                      lease_seconds=2, heartbeat_seconds=0.5)
    for _ in range(2):
        fleet.start("async", concurrency=8)
    return fleet, client


def test_redis_restarted_empty_tells_every_waiter(redis_server, ns, tmp_path):  # noqa: ARG001 - skips without redis-server
    with RedisServer() as redis:
        fleet, client = start(redis, ns, tmp_path)
        try:
            handles = [client.three_incs(i) for i in range(RUNS)]
            in_flight = wait_until_in_flight(handles, 20)
            assert in_flight > 0, "the load finished before the failure: nothing was tested"
            redis.kill()
            redis.start()  # no persistence: empty
            counts = outcomes(handles, timeout=120)
            print(f"{in_flight} runs in flight when Redis lost its data: {dict(counts)}")
            assert counts["no answer"] == 0, counts
            assert counts["lost"] > 0, "runs in flight were lost with the data and said so"
            assert counts["ok"] + counts["lost"] == RUNS
            # The same workers and client serve new work on the new, empty Redis.
            assert client.run_sync("three_incs", 1000) == 1003
        finally:
            client.stop_sync()
            fleet.close()


def test_redis_with_aof_killed_mid_load(redis_server, ns, tmp_path):  # noqa: ARG001 - skips without redis-server
    # appendfsync everysec: Redis writes each command to the AOF file before it
    # answers and fsyncs once a second. Killing the process (as here, or the OOM
    # killer) loses nothing it acknowledged: the kernel still holds what it wrote.
    # A machine crash can lose up to the last second; then the runs whose records
    # went with it end with RunLost, and the others finish.
    with RedisServer(appendonly=True, appendfsync="everysec") as redis:
        fleet, client = start(redis, ns, tmp_path)
        try:
            handles = [client.three_incs(i) for i in range(RUNS)]
            in_flight = wait_until_in_flight(handles, 20)
            assert in_flight > 0, "the load finished before the failure: nothing was tested"
            redis.kill()
            redis.start()  # replays the AOF
            counts = outcomes(handles, timeout=120)
            print(f"{in_flight} runs in flight when Redis (AOF everysec) was killed: "
                  f"{dict(counts)}")
            assert counts["no answer"] == 0, counts
            assert counts["ok"] + counts["lost"] == RUNS
            assert client.run_sync("three_incs", 1000) == 1003
        finally:
            client.stop_sync()
            fleet.close()


def test_out_of_memory_is_an_error_not_a_hang(redis_server, ns, tmp_path):  # noqa: ARG001 - skips without redis-server
    with RedisServer(extra=("--maxmemory-policy", "noeviction")) as redis:
        fleet, client = start(redis, ns, tmp_path)
        try:
            handles = [client.three_incs(i) for i in range(RUNS)]
            in_flight = wait_until_in_flight(handles, 20)
            assert in_flight > 0, "the load finished before memory ran out: nothing was tested"
            # A limit below what Redis already holds: every write that would grow
            # it is refused, whatever is trimmed meanwhile.
            redis.cli("config", "set", "maxmemory", "1")
            refused = [client.three_incs(i) for i in range(10)]
            t0 = time.monotonic()
            for h in refused:
                with pytest.raises(StoreFull, match="(?i)memory"):
                    h.result_sync(timeout=30)
            print(f"submissions refused in {time.monotonic() - t0:.2f} s")
            stuck = sum(not finished(h) for h in handles)
            redis.cli("config", "set", "maxmemory", "0")
            counts = outcomes(handles, timeout=120)
            print(f"{in_flight} runs in flight when memory ran out, {stuck} waiting while it was "
                  f"full: {dict(counts)}")
            assert counts == Counter(ok=RUNS), "every run in flight finished once memory was back"
        finally:
            client.stop_sync()
            fleet.close()
