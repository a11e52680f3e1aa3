"""Kill storms: workers SIGKILLed and restarted every fraction of a second while
thousands of workflows run. No healthy run may fail: a run that keeps moving
survives any number of worker deaths (only lapses without progress count toward
WorkerLost), nothing is lost, nothing is wrong, and a step runs again only where
the process that ran it was killed.

The size is BLAZING_STORM_RUNS (default 3000) five-step workflows whose blocking
steps sleep 50 ms, on 2 async + 1 blocking worker with a 2 s lease and a 0.5 s
heartbeat, as in the report this reproduces.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.apps.durable import make_app
from tests.support import journal
from tests.support.outcomes import collect
from tests.support.workers import WorkerFleet

SECRET = "storm-secret"
RUNS = int(os.environ.get("BLAZING_STORM_RUNS", "3000"))


@pytest.mark.timeout(900)
@pytest.mark.parametrize("every", [0.3, 1.0], ids=["kill-every-0.3s", "kill-every-1.0s"])
def test_kill_storm_fails_no_healthy_run(redis_server, tmp_path: Path, every: float):
    ns = "storm" + uuid.uuid4().hex[:8]
    env = {"BLAZING_REDIS_URL": redis_server.url, "BLAZING_NAMESPACE": ns,
           "BLAZING_SECRET": SECRET, "BLAZING_LEASE_SECONDS": "2",
           "BLAZING_HEARTBEAT_SECONDS": "0.5", "BLAZING_TEST_STEP_MS": "50",
           "BLAZING_TEST_JOURNAL": str(tmp_path / "journal")}
    fleet = WorkerFleet(env, log=tmp_path / "workers.log")
    client = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                      secret=SECRET, lease_seconds=2, heartbeat_seconds=0.5)
    sizes = {"async": None, "blocking": 64}
    for kind in ("async", "async", "blocking"):
        fleet.start(kind, concurrency=sizes[kind])
    killed: set[int] = set()
    rng = random.Random(20261203)
    done = threading.Event()

    def storm() -> None:
        # The stimulus: every `every` seconds a random live worker is SIGKILLed
        # and a replacement of its kind started.
        while not done.wait(every):
            victims = fleet.alive()
            if not victims:
                continue
            victim = rng.choice(victims)
            killed.add(victim.pid)
            victim.kill()
            fleet.start(victim.kind, concurrency=sizes[victim.kind], wait=False)

    t0 = time.monotonic()
    handles = [client.five_steps(i) for i in range(RUNS)]
    chaos = threading.Thread(target=storm, daemon=True)
    chaos.start()
    try:
        outcomes = collect(handles, lambda i: i + 15, timeout=800)
    finally:
        done.set()
        chaos.join(10)
        client.stop_sync()
        fleet.close()
    took = time.monotonic() - t0

    entries = journal.read(tmp_path / "journal")
    starts = journal.starts_by_op(entries)
    repeats, unexplained = 0, []
    for (unit, path), runs in starts.items():
        # Every execution but the last was cut short: its process was killed.
        for earlier in runs[:-1]:
            repeats += 1
            if earlier.pid not in killed:
                unexplained.append(f"{unit}/{path} attempt {earlier.attempt} in pid {earlier.pid}")
    print(f"kill every {every} s: {len(killed)} kills, {RUNS} runs in {took:.0f} s: "
          f"{outcomes}; {repeats} repeated step executions of {len(starts)} steps, "
          f"{len(unexplained)} of them after a process that was never killed")
    assert outcomes.counts == Counter(ok=RUNS), str(outcomes)
    assert not unexplained, f"ran again though never killed: {unexplained[:5]}"
    assert len(killed) >= 3, "the storm outlasted several kills"


@pytest.mark.timeout(120)
def test_a_step_that_kills_every_worker_fails_with_worker_lost(redis_server, tmp_path: Path):
    """Progress is forgiven, a poison pill is not: a step that kills each worker it
    lands on, without ever making progress, fails with WorkerLost after max_lapses
    lapses in a row, and the workers that replace the dead ones serve other work."""
    from blazing.errors import WorkerLost

    ns = "pill" + uuid.uuid4().hex[:8]
    env = {"BLAZING_REDIS_URL": redis_server.url, "BLAZING_NAMESPACE": ns,
           "BLAZING_SECRET": SECRET, "BLAZING_LEASE_SECONDS": "1",
           "BLAZING_HEARTBEAT_SECONDS": "0.2", "BLAZING_MAX_LAPSES": "2"}
    fleet = WorkerFleet(env, log=tmp_path / "workers.log")
    client = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                      secret=SECRET, lease_seconds=1, heartbeat_seconds=0.2, max_lapses=2)
    done = threading.Event()
    deaths: list[int] = []

    def keep_one_worker() -> None:
        # What a foreman does: replace a worker that died.
        # Not waiting for "ready": a worker may take the pill and die first.
        while not done.is_set():
            worker = fleet.start("async", wait=False)
            deaths.append(worker.proc.wait())

    keeper = threading.Thread(target=keep_one_worker, daemon=True)
    keeper.start()
    try:
        pill = client.poison()
        with pytest.raises(WorkerLost, match="3 times in a row without progress"):
            pill.result_sync(timeout=60)
        assert client.run_sync("three_incs", 1) == 4, "healthy work goes on"
    finally:
        done.set()
        client.stop_sync()
        fleet.close()
        keeper.join(30)
        for w in fleet.workers:  # one the keeper started while the fleet closed
            w.kill()
    assert len(deaths) >= 3 and all(code == -9 for code in deaths[:3]), deaths
