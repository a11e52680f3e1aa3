"""Schedules served by three real worker processes on a real Redis.

Each test starts three workers of ``tests.apps.scheduled`` (a 1 s ``Period``); every
one of them ticks and races for each tick in the store. The tests check the ticks
of the runs (a run's id names its tick) in the run index and in the journal the
workflow writes: exactly one run per tick, with a worker SIGKILLed mid-way too;
pause (through the CLI) stops runs and resume restarts them; ticks missed while
no process ran follow the stated policy (only the latest runs; the rest are
logged). Every wait is on observed runs or store state, and bounded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.apps.scheduled import make_app
from tests.support.sockets import wait_for
from tests.support.workers import ROOT, WorkerFleet

pytestmark = pytest.mark.timeout(240)

SECRET = "schedules-secret"
SECOND = timedelta(seconds=1)
# Bounds for waiting on runs: generous, since the machine is shared and slow.
RUNS_TIMEOUT = 60.0


def tick_of(unit: str) -> datetime:
    """The tick a scheduled run's id names ("beat@20300102T030405Z")."""
    name, _, stamp = unit.partition("@")
    assert name == "beat", unit
    return datetime.strptime(stamp, "%Y%m%dT%H%M%S%z" if "." not in stamp
                             else "%Y%m%dT%H%M%S.%f%z")


@pytest.fixture
def ns() -> str:
    """A fresh namespace: each test sees only its own schedule."""
    return "s" + uuid.uuid4().hex[:10]


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journal"


@pytest.fixture
def fleet(redis_server, ns, tmp_path: Path, journal_path: Path):
    f = WorkerFleet({
        "BLAZING_REDIS_URL": redis_server.url,
        "BLAZING_NAMESPACE": ns,
        "BLAZING_LEASE_SECONDS": "2",
        "BLAZING_HEARTBEAT_SECONDS": "0.3",
        "BLAZING_SECRET": SECRET,
        "BLAZING_TEST_JOURNAL": str(journal_path),
        "BLAZING_LOG_LEVEL": "INFO",
    }, log=tmp_path / "workers.log", app="tests.apps.scheduled:app")
    yield f
    f.close()


@pytest.fixture
def client(redis_server, ns):
    """The same app as a client only: it reads the store and ticks nothing."""
    app = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                   secret=SECRET)
    yield app
    app.stop_sync()


def ticks_run(client) -> list[datetime]:
    """The ticks of every run in the run index, oldest first."""
    return sorted(tick_of(r.unit_id) for r in client.runs(workflow="tick", limit=1000))


def wait_for_runs(client, count: int, after: datetime | None = None) -> list[datetime]:
    """Wait (bounded) until ``count`` runs with a tick after ``after`` exist."""
    def enough() -> bool:
        return len([t for t in ticks_run(client) if after is None or t > after]) >= count
    wait_for(enough, RUNS_TIMEOUT, f"{count} scheduled runs after {after}")
    return ticks_run(client)


def journaled(path: Path) -> Counter[str]:
    """Executions per run, from the journal."""
    if not path.exists():
        return Counter()
    return Counter(line.split()[0] for line in path.read_text().splitlines())


def assert_one_per_tick(ticks: list[datetime]) -> None:
    """Consecutive seconds, each once: no tick without its run, none run twice."""
    assert len(set(ticks)) == len(ticks), f"a tick ran twice: {ticks}"
    gaps = [(a, b) for a, b in zip(ticks, ticks[1:], strict=False) if b - a != SECOND]
    assert not gaps, f"ticks without a run between {gaps}"


def start_three(fleet: WorkerFleet) -> None:
    for _ in range(3):
        fleet.start("async")


def test_three_workers_one_run_per_tick_even_with_one_killed(fleet, client, journal_path):
    start_three(fleet)
    first = wait_for_runs(client, 4)
    victim = fleet.workers[0]
    victim.kill()  # SIGKILL: its ticker dies between ticks or in the middle of one
    killed_at = datetime.now(timezone.utc)
    ticks = wait_for_runs(client, 4, after=killed_at)

    # Over every tick from the first run to the last, exactly one run.
    assert_one_per_tick(ticks)
    assert len(ticks) >= len(first) + 4
    # Each run was executed (the journal), and no tick was executed as two runs.
    wait_for(lambda: set(journaled(journal_path)) >= {
        f"beat@{t.strftime('%Y%m%dT%H%M%SZ')}" for t in ticks[:-1]}, RUNS_TIMEOUT,
        "every run but the newest journaled")
    runs = journaled(journal_path)
    assert all(tick_of(u) in ticks for u in runs), "a journaled run is not in the run index"
    # All three workers served (ticked and ran) before the kill; the two left
    # carried on alone.
    assert fleet.alive() and victim not in fleet.alive()


def cli(redis_url: str, ns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "blazing.cli", "--redis-url", redis_url,
                           "--namespace", ns, "schedules", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": f"{ROOT / 'python'}:{ROOT}"})


def test_pause_stops_runs_and_resume_restarts_them(fleet, client, redis_server, ns):
    start_three(fleet)
    wait_for_runs(client, 2)

    listed = cli(redis_server.url, ns, "-o", "json")
    assert listed.returncode == 0, listed.stderr
    (beat,) = json.loads(listed.stdout)
    assert (beat["name"], beat["workflow"], beat["spec"], beat["paused"]) == \
        ("beat", "tick", "every 1s", False)
    assert beat["next_tick"] and beat["last_run"].startswith("beat@")

    paused = cli(redis_server.url, ns, "pause", "beat")
    assert paused.returncode == 0, paused.stderr
    assert "paused beat" in paused.stdout
    state = client.schedules()[0]
    assert state.paused
    # Ticks keep passing (claimed by the tickers, so the store's last tick moves
    # on) but none runs: wait until three more ticks have passed.
    fired = state.fired
    since = state.last_tick
    wait_for(lambda: client.schedules()[0].last_tick >= since + 3 * SECOND, RUNS_TIMEOUT,
             "three ticks pass while paused")
    after_pause = client.schedules()[0]
    # A run submitted just before the pause landed may be counted once more.
    assert after_pause.fired <= fired + 1
    runs_while_paused = [t for t in ticks_run(client) if t > since + SECOND]
    assert runs_while_paused == [], f"runs while paused: {runs_while_paused}"

    text = cli(redis_server.url, ns)
    assert text.returncode == 0 and "beat" in text.stdout and "yes" in text.stdout

    resumed = cli(redis_server.url, ns, "resume", "beat", "-o", "json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["paused"] is False
    resumed_at = datetime.now(timezone.utc)
    ticks = wait_for_runs(client, 3, after=resumed_at)
    assert_one_per_tick([t for t in ticks if t > resumed_at])

    unknown = cli(redis_server.url, ns, "pause", "nobody")
    assert unknown.returncode == 1
    assert "no schedule 'nobody'" in unknown.stderr


def test_missed_ticks_run_only_the_latest_and_are_logged(fleet, client, tmp_path):
    start_three(fleet)
    before = wait_for_runs(client, 2)
    for w in fleet.workers:
        w.kill()
    # Nothing serves the app now. The last tick any of them claimed:
    last = client.schedules()[0].last_tick
    assert last is not None
    # Let at least four ticks pass with no process: wait on the clock itself.
    wait_for(lambda: datetime.now(timezone.utc) >= last + 4.5 * SECOND, 30,
             "four ticks pass with every worker gone")
    start_three(fleet)
    ticks = wait_for_runs(client, 3, after=last)

    later = [t for t in ticks if t > last]
    resumed = later[0]
    # The ticks in between never ran; after the first run the ticks go on one by one.
    missed = round((resumed - last) / SECOND) - 1
    assert missed >= 3, f"expected missed ticks between {last} and {resumed}"
    assert_one_per_tick(later)
    assert set(before) <= set(ticks)
    # The process that fired first after the gap said which ticks never ran.
    log = (tmp_path / "workers.log").read_text(errors="replace")
    wanted = f"schedule beat: {missed} tick(s) after {last.isoformat()} never ran"
    assert wanted in log, log[-3000:]
