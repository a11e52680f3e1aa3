"""Durable execution on a real redis-server with real worker processes and real SIGKILLs.

Leases are short here (1 s, heartbeat 0.2 s) so that recovery from a kill takes
about two seconds; each test is bounded by pytest-timeout.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from blazing.codec import ValueTooLargeError
from tests.apps.durable import make_app
from tests.support import journal
from tests.support.coordinator import Coordinator
from tests.support.workers import WorkerFleet

pytestmark = pytest.mark.timeout(180)

SECRET = "e2e-secret"


@pytest.fixture
def ns() -> str:
    """A fresh namespace: each test sees only its own work."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def coord():
    c = Coordinator()
    yield c
    c.close()


@pytest.fixture
def fleet(redis_server, ns, tmp_path: Path, coord: Coordinator):
    f = WorkerFleet({
        "BLAZING_REDIS_URL": redis_server.url,
        "BLAZING_NAMESPACE": ns,
        "BLAZING_LEASE_SECONDS": "1",
        "BLAZING_HEARTBEAT_SECONDS": "0.2",
        "BLAZING_SECRET": SECRET,
        "BLAZING_TEST_JOURNAL": str(tmp_path / "journal"),
        "BLAZING_TEST_COORD": coord.path,
    }, log=tmp_path / "workers.log")
    yield f
    f.close()


@pytest.fixture
def client(redis_server, ns):
    """A client-only app on the same namespace (runs nothing itself)."""
    app = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                   secret=SECRET, lease_seconds=1, heartbeat_seconds=0.2)
    yield app
    app.stop_sync()


def test_kill_between_steps_and_inside_a_step(fleet, client, coord, tmp_path):
    # Step 3 of the workflow stops at a checkpoint: steps 1 and 2 are recorded.
    for w in ("async", "blocking"):
        fleet.start(w, extra_env={"BLAZING_TEST_GATE": "add:3"})
    wf_worker, step_worker = fleet.workers
    handle = client.five_steps(0)

    first = coord.arrival()
    assert first.label == "add:3" and first.pid == step_worker.pid
    # Kill the workflow's worker while it waits between steps, then the step's
    # worker inside step 3; replacements pick both up when the leases lapse.
    wf_worker.kill()
    fleet.start("async", extra_env={"BLAZING_TEST_GATE": "add:3"})
    step_worker.kill()
    fleet.start("blocking", extra_env={"BLAZING_TEST_GATE": "add:3"})
    second = coord.arrival()
    assert second.label == "add:3" and second.pid != step_worker.pid
    second.release()

    assert handle.result_sync(timeout=60) == 15
    starts = journal.starts_by_op(journal.read(tmp_path / "journal"))
    by_path = {path: runs for (unit, path), runs in starts.items() if unit == handle.unit_id}
    assert {p: len(r) for p, r in by_path.items()} == {
        "0.1": 1, "0.2": 1, "0.3": 2, "0.4": 1, "0.5": 1}
    assert by_path["0.3"][0].pid == step_worker.pid  # the run the kill interrupted
    assert by_path["0.3"][1].attempt == 2


def test_random_kills_lose_nothing(fleet, client, tmp_path):
    n = 500
    # Slow enough (20 ms a step, 4 at once per worker) that the load lasts
    # several seconds and kills land in the middle of steps and workflows.
    slow = {"BLAZING_TEST_STEP_MS": "20"}
    for _ in range(2):
        fleet.start("async", concurrency=4, extra_env=slow)
    killed: set[int] = set()
    rng = random.Random(20261126)
    done = threading.Event()

    def chaos() -> None:
        # The stimulus of this test: a kill and a restart every half second.
        while not done.wait(0.5):
            victims = fleet.alive()
            if not victims:
                continue
            victim = rng.choice(victims)
            killed.add(victim.pid)
            victim.kill()
            fleet.start("async", concurrency=4, wait=False, extra_env=slow)

    async def run_all() -> list[int]:
        handles = [client.three_incs(i) for i in range(n)]
        return [await h.result() for h in handles]

    t = threading.Thread(target=chaos, daemon=True)
    t.start()
    try:
        results = asyncio.run(asyncio.wait_for(run_all(), 150))
    finally:
        done.set()
        t.join(10)
    assert results == [i + 3 for i in range(n)]
    assert killed, "the chaos loop killed nothing"

    entries = journal.read(tmp_path / "journal")
    ended = {(e.unit, e.path, e.pid) for e in entries if e.kind == "end"}
    repeats = 0
    for (unit, path), runs in journal.starts_by_op(entries).items():
        # Every execution but the last was cut short by a kill: its process
        # was killed, whether or not it got to journal its end.
        for earlier in runs[:-1]:
            repeats += 1
            assert earlier.pid in killed, (
                f"{unit}/{path} ran again after pid {earlier.pid}, which was never killed"
                f" (ended: {(unit, path, earlier.pid) in ended})")
    print(f"{len(killed)} kills, {repeats} repeated executions of {len(entries) // 2} steps")
    assert len(killed) >= 3, "the load outlasted several kills"


def test_redis_restart_mid_load(redis_server, tmp_path, ns, coord):  # noqa: ARG001 - skips without redis-server
    """Redis (with AOF) restarts while a counted number of runs is in flight: every one
    of them, and new work after, delivers its result."""
    from tests.support.redis_server import RedisServer

    runs, threads = 200, 4
    with RedisServer(appendonly=True) as redis:
        fleet = WorkerFleet({
            "BLAZING_REDIS_URL": redis.url, "BLAZING_NAMESPACE": ns,
            "BLAZING_LEASE_SECONDS": "5", "BLAZING_HEARTBEAT_SECONDS": "1",
            "BLAZING_SECRET": SECRET, "BLAZING_TEST_COORD": coord.path,
        }, log=tmp_path / "workers.log")
        client = make_app(redis_url=redis.url, namespace=ns, local_workers=False,
                          secret=SECRET, lease_seconds=5, heartbeat_seconds=1)
        done = threading.Event()
        releaser = threading.Thread(target=release_until, args=(coord, done), daemon=True)
        try:
            fleet.start("async")
            fleet.start("blocking", concurrency=threads, extra_env={"BLAZING_TEST_GATE": "add:3"})
            handles = [client.five_steps(i) for i in range(runs)]
            # Every run passes step 3, which stops at the gate: once each of the blocking
            # worker's threads holds one, the other runs wait on queued steps, and none
            # can finish before the restart.
            held = [coord.arrival(timeout=60) for _ in range(threads)]
            statuses = Counter(h.status_sync() for h in handles)
            assert statuses["pending"] + statuses["running"] == runs, statuses
            print(f"at the restart: {dict(statuses)}, {len(held)} steps inside the worker")
            redis.restart()
            for arrival in held:
                arrival.release()
            releaser.start()
            results = [h.result_sync(timeout=120) for h in handles]
            assert results == [i + 15 for i in range(runs)]
            # New work after the restart flows too.
            assert client.run_sync("five_steps", 1000) == 1015
        finally:
            done.set()
            if releaser.is_alive():
                releaser.join(10)
            client.stop_sync()
            fleet.close()


def release_until(coord: Coordinator, done: threading.Event) -> None:
    """Let every step that reaches the gate go on, until ``done`` is set."""
    while not done.is_set():
        try:
            coord.arrival(timeout=0.5).release()
        except (TimeoutError, ConnectionError):
            continue  # no arrival in this half second (or a step hung up): look again


def test_malformed_value_fails_that_run_only(fleet, client, redis_server, ns):
    # Both runs wait in the queue (no worker yet); one gets garbage planted as
    # its arguments, then a worker serves them.
    good = client.three_incs(1)
    bad = client.three_incs(2)
    key = f"{{{ns}}}:o:{bad.unit_id}:0"
    assert redis_server.cli("hexists", key, "a") == "1", "the run's arguments are stored"
    redis_server.cli("hset", key, "a", "not msgpack at all")
    fleet.start("async")
    assert good.result_sync(timeout=30) == 4
    with pytest.raises(Exception, match="(?i)malformed|extra data|payload") as info:
        bad.result_sync(timeout=30)
    assert "three_incs" in str(info.value) and bad.unit_id in str(info.value)
    # The worker keeps serving others.
    assert client.run_sync("three_incs", 10) == 13


def test_unreachable_redis_at_start_is_a_clear_error():
    from blazing import Blazing
    from blazing.errors import BlazingError
    from tests.support.redis_server import free_port

    url = f"redis://user:sekret@127.0.0.1:{free_port()}/0"
    app = Blazing(redis_url=url, connect_timeout=1)

    @app.step
    async def anything() -> int:
        return 1

    t0 = time.monotonic()
    with pytest.raises(BlazingError) as info:
        app.run_sync("anything")
    assert time.monotonic() - t0 < 10
    msg = str(info.value)
    assert "127.0.0.1" in msg and "sekret" not in msg


def test_oversized_argument_is_refused_at_submit(redis_server, ns):
    app = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                   secret=SECRET, max_value_bytes=10_000)
    try:
        app._ensure_started()
        before = redis_server.cli("dbsize")
        with pytest.raises(ValueTooLargeError, match="three_incs"):
            app.three_incs(b"x" * 20_000)
        assert redis_server.cli("dbsize") == before, "nothing was written"
    finally:
        app.stop_sync()


def test_sigterm_lets_running_work_finish(fleet, client, coord):
    fleet.start("async")
    blocking = fleet.start("blocking", extra_env={"BLAZING_TEST_GATE": "add:2"})
    handle = client.five_steps(0)
    arrival = coord.arrival()
    assert arrival.pid == blocking.pid
    # SIGTERM while step 2 runs: the worker waits for it (drain), so release it.
    blocking.proc.send_signal(15)
    arrival.release()
    assert blocking.proc.wait(30) == 0
    fleet.start("blocking")
    assert handle.result_sync(timeout=60) == 15


@pytest.mark.parametrize("drain", ["BLAZING_DRAIN_TIMEOUT", "--drain-timeout"])
def test_sigterm_hands_back_unfinished_work_at_once(redis_server, ns, tmp_path, coord, drain):
    # A long lease: if the drained worker did not hand its step back, the
    # replacement could only take it after 60 s. The drain is 0.5 s, set by the app's
    # setting or by the worker's flag (which wins over a 600 s setting).
    fleet = WorkerFleet({
        "BLAZING_REDIS_URL": redis_server.url, "BLAZING_NAMESPACE": ns,
        "BLAZING_LEASE_SECONDS": "60", "BLAZING_HEARTBEAT_SECONDS": "5",
        "BLAZING_SECRET": SECRET, "BLAZING_TEST_COORD": coord.path,
        "BLAZING_TEST_GATE": "add:2",
        "BLAZING_DRAIN_TIMEOUT": "0.5" if drain == "BLAZING_DRAIN_TIMEOUT" else "600",
    }, log=tmp_path / "workers.log")
    client = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                      secret=SECRET)
    try:
        fleet.start("async")
        first = fleet.start("blocking", args=("--drain-timeout", "0.5") if drain.startswith("--")
                            else ())
        handle = client.five_steps(0)
        stuck = coord.arrival()
        assert stuck.pid == first.pid
        t0 = time.monotonic()
        assert first.terminate(30) == 0  # drains 0.5 s, then hands back and exits
        fleet.start("blocking")
        again = coord.arrival(timeout=30)
        assert again.pid != first.pid
        assert time.monotonic() - t0 < 30, "taken over long before the 60 s lease lapsed"
        again.release()
        stuck.conn.close()
        assert handle.result_sync(timeout=60) == 15
    finally:
        client.stop_sync()
        fleet.close()
