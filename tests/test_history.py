"""History, breadcrumbs and statistics: app.runs/history/breadcrumbs/stats and the
``blazing`` commands over them, against a known load, embedded and on a real
redis-server with real worker processes (one SIGKILLed mid-run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from blazing import SyncBlazing, log_breadcrumb
from blazing.errors import BlazingError, RunNotFound
from tests.apps.durable import DurableError, make_app
from tests.support.coordinator import Coordinator
from tests.support.workers import ROOT, WorkerFleet

pytestmark = pytest.mark.timeout(120)
SECRET = "history-secret"


def known_load(app: SyncBlazing) -> dict[str, list[str]]:
    """5 runs that succeed, 2 that fail after one retry each; returns the unit ids."""

    @app.step(retries=1)
    def double(x: int) -> int:
        log_breadcrumb("doubling", {"x": x})
        if x < 0:
            raise ValueError("no negatives")
        return 2 * x

    @app.workflow
    async def flow(x: int) -> int:
        return await double(x) + 1

    ok, bad = [], []
    for i in range(5):
        assert app.flow(i) == 2 * i + 1
    for r in app.runs(status="succeeded"):
        ok.append(r.unit_id)
    for i in (-1, -2):
        with pytest.raises(ValueError, match="no negatives"):
            app.flow(i)
    bad = [r.unit_id for r in app.runs(status="failed")]
    return {"ok": ok, "bad": bad}


def test_runs_history_breadcrumbs_and_stats_embedded(make_app):
    app = make_app(SyncBlazing)
    units = known_load(app)
    assert len(units["ok"]) == 5 and len(units["bad"]) == 2
    runs = app.runs()
    assert [r.status for r in runs] == ["failed", "failed"] + ["succeeded"] * 5, "newest first"
    assert {r.name for r in runs} == {"flow"}
    assert app.runs(limit=3)[2].status == "succeeded"
    assert app.runs(workflow="nosuch") == []

    history = app.history(units["bad"][0])
    assert [(o.path, o.name, o.status, o.attempts) for o in history] == [
        ("0", "flow", "failed", 1), ("0.1", "double", "failed", 2)]
    assert history[1].error_type == "builtins.ValueError"
    assert history[1].args() == ((-2,), {})

    events = app.breadcrumbs(units["bad"][0]).events
    assert per_path(events) == {
        "0": ["queued", "started", "failed"],
        "0.1": ["queued", "user", "retry", "started", "user", "failed"]}
    assert [e.at for e in events] == sorted(e.at for e in events)
    crumbs = [e for e in app.breadcrumbs(units["bad"][0]).events if e.kind == "user"]
    assert [c.metadata for c in crumbs] == [{"x": -2}, {"x": -2}]

    stats = app.stats(since="1h")
    double, flow = stats["steps"]["double"], stats["steps"]["flow"]
    assert (double.succeeded, double.failed, double.retried) == (5, 2, 2)
    assert (flow.succeeded, flow.failed) == (5, 2)
    assert double.count == 9 and abs(double.error_rate - 4 / 9) < 1e-9
    assert double.p50_ms is not None and double.p50_ms <= double.p99_ms
    assert stats["lanes"]["blocking"].count == 9 and stats["lanes"]["async"].count == 7

    with pytest.raises(RunNotFound):
        app.history("no-such-run")
    with pytest.raises(RunNotFound):
        app.breadcrumbs("no-such-run")
    with pytest.raises(BlazingError, match="inside one"):
        log_breadcrumb("outside any step")


def per_path(events: list) -> dict[str, list[str]]:
    """Each operation's events in timeline order (within a millisecond, events of
    different operations have no order to check)."""
    out: dict[str, list[str]] = {}
    for e in events:
        out.setdefault(e.path, []).append(e.kind)
    return out


@pytest.fixture
def ns() -> str:
    return "hist" + uuid.uuid4().hex[:8]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "blazing.cli", *args], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


def test_a_retried_and_replayed_run_on_redis(redis_server, ns, tmp_path: Path):
    coord = Coordinator()
    env = {"BLAZING_REDIS_URL": redis_server.url, "BLAZING_NAMESPACE": ns,
           "BLAZING_SECRET": SECRET, "BLAZING_LEASE_SECONDS": "1",
           "BLAZING_HEARTBEAT_SECONDS": "0.2", "BLAZING_TEST_COORD": coord.path,
           "BLAZING_TEST_GATE": "add:3"}
    fleet = WorkerFleet(env, log=tmp_path / "workers.log")
    client = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                      secret=SECRET, lease_seconds=1, heartbeat_seconds=0.2)
    try:
        first = fleet.start("async")
        fleet.start("blocking")
        handle = client.traced(1)
        held = coord.arrival()  # add(2, 3) waits: flaky_once failed once, then succeeded
        first.kill()  # the workflow's worker dies while the workflow waits on add
        fleet.start("async")
        held.release()  # add finishes before the workflow's lease lapses: it is replayed too
        assert handle.result_sync(timeout=60) == 5

        events = client.breadcrumbs(handle.unit_id).events
        seen = [(e.path, e.kind) for e in events]
        assert per_path(events) == {
            "0": ["queued", "user", "lapse", "started", "user", "succeeded"],
            "0.1": ["queued", "user", "retry", "started", "user", "succeeded", "replay"],
            "0.2": ["queued", "started", "succeeded", "replay"]}, seen
        # Across operations, what a second or more apart comes in order.
        at = {(e.path, e.kind): e.at for e in events}
        assert at[("0.2", "queued")] < at[("0", "lapse")] < at[("0.1", "replay")]
        retry = next(e for e in events if e.kind == "retry")
        assert "attempt 1" in retry.message and "the first attempt fails" in retry.message
        lapse = next(e for e in events if e.kind == "lapse")
        assert lapse.message.startswith("lease taken back from")
        attempts = [e.metadata["attempt"] for e in events if e.message == "flaky attempt"]
        assert attempts == [1, 2]

        # The same through the console script, as text and as JSON.
        cenv = {"BLAZING_REDIS_URL": redis_server.url, "BLAZING_NAMESPACE": ns}
        out = cli(cenv, "breadcrumbs", handle.unit_id)
        assert out.returncode == 0, out.stderr
        assert "traced 0" in out.stdout and "└─ add 0.2" in out.stdout
        assert "lease taken back" in out.stdout and "returned its stored result" in out.stdout
        out = cli(cenv, "breadcrumbs", handle.unit_id, "-o", "json")
        assert [(e["path"], e["kind"]) for e in json.loads(out.stdout)["events"]] == seen
        out = cli(cenv, "runs", "--workflow", "traced")
        assert handle.unit_id in out.stdout and "succeeded" in out.stdout
        out = cli(cenv, "show", handle.unit_id, "--values", "-o", "json")
        ops = json.loads(out.stdout)
        assert [(o["path"], o["name"], o["attempts"]) for o in ops] == [
            ("0", "traced", 2), ("0.1", "flaky_once", 2), ("0.2", "add", 1)]
        assert ops[2]["args"] == "((2, 3), {})" and ops[2]["result"] == "5"
    finally:
        client.stop_sync()
        fleet.close()
        coord.close()


def test_stats_and_runs_on_redis_against_a_known_load(redis_server, ns, tmp_path: Path):
    fleet = WorkerFleet({"BLAZING_REDIS_URL": redis_server.url, "BLAZING_NAMESPACE": ns,
                         "BLAZING_SECRET": SECRET}, log=tmp_path / "workers.log")
    client = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                      secret=SECRET)
    try:
        fleet.start("async")
        handles = [client.three_incs(i) for i in range(20)]
        assert [h.result_sync(timeout=60) for h in handles] == [i + 3 for i in range(20)]
        for msg in ("a", "b", "c"):
            with pytest.raises(DurableError):
                client.fail_importable(msg).result_sync(timeout=30)
        cenv = {"BLAZING_REDIS_URL": redis_server.url, "BLAZING_NAMESPACE": ns}
        # The workers add their counts every 2 s; wait for the last of them.
        stats: dict = {}
        for _ in range(100):
            out = cli(cenv, "stats", "--since", "10m", "-o", "json")
            assert out.returncode == 0, out.stderr
            stats = json.loads(out.stdout)["steps"]
            if stats.get("inc", {}).get("count") == 60 and \
                    stats.get("fail_importable", {}).get("count") == 3:
                break
        assert stats["inc"]["succeeded"] == 60 and stats["three_incs"]["succeeded"] == 20
        assert stats["fail_importable"]["failed"] == 3
        assert stats["fail_importable"]["error_rate"] == 1.0
        assert stats["inc"]["p99_ms"] >= stats["inc"]["p50_ms"] > 0
        out = cli(cenv, "stats", "--since", "10m")
        assert "three_incs" in out.stdout and "fail_importable" in out.stdout
        out = cli(cenv, "runs", "--status", "failed", "-o", "json")
        assert len(json.loads(out.stdout)) == 3
        out = cli(cenv, "runs", "--limit", "5", "-o", "json")
        rows = json.loads(out.stdout)
        assert len(rows) == 5 and all(r["name"] == "fail_importable" for r in rows[:3])
    finally:
        client.stop_sync()
        fleet.close()


def test_bad_input_gets_a_clear_message_and_exit_code(redis_server, ns):
    env = {"BLAZING_REDIS_URL": redis_server.url, "BLAZING_NAMESPACE": ns}
    out = cli(env, "breadcrumbs", "no-such-run")
    assert out.returncode == 1 and "no-such-run" in out.stderr and "no run" in out.stderr
    out = cli(env, "show", "no-such-run")
    assert out.returncode == 1 and "no-such-run" in out.stderr
    out = cli(env, "runs", "--since", "yesterday")
    assert out.returncode == 1 and "since='yesterday'" in out.stderr
    out = cli({"BLAZING_REDIS_URL": ""}, "runs")
    assert out.returncode == 1 and "--redis-url" in out.stderr
    from tests.support.redis_server import free_port

    out = cli({"BLAZING_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
               "BLAZING_CONNECT_TIMEOUT": "1"}, "runs")
    assert out.returncode == 1 and "does not answer" in out.stderr


def test_breadcrumb_cap_and_history_off_embedded(make_app):
    app = make_app(SyncBlazing, max_breadcrumbs=3, history=False)

    @app.step
    def chatty(n: int) -> int:
        for i in range(n):
            log_breadcrumb(f"note {i}", {"i": i})
        return n

    handle = app.submit(chatty, 5)
    assert handle.result_sync(timeout=30) == 5
    # history=False: no index of runs, no counts; records and timelines stay.
    assert app.runs() == [] and app.stats()["steps"] == {}
    (root,) = app.history(handle.unit_id)
    assert root.name == "chatty" and root.status == "succeeded"
    timeline = app.breadcrumbs(handle.unit_id)
    user = [e for e in timeline.events if e.kind == "user"]
    assert [e.message for e in user] == ["note 2", "note 3", "note 4"], "the newest kept"
    assert [e.metadata for e in user] == [{"i": 2}, {"i": 3}, {"i": 4}]
    assert timeline.dropped == 2
    assert [e.kind for e in timeline.events if e.kind != "user"] == [
        "queued", "started", "succeeded"]


def test_timeout_follow_and_workers_on_redis(redis_server, ns, tmp_path: Path):
    """A timed-out step's breadcrumb; `breadcrumbs --follow` streaming a running run
    until it ends; `workers` naming the run a worker is on, through a real foreman."""
    from tests.support.foreman import Foreman

    coord = Coordinator()
    fm = Foreman("--redis-url", redis_server.url, "--namespace", ns,
                 "--app", "tests.apps.durable:app", "--metrics-addr", "",
                 "--async-workers", "1", "--blocking-workers", "1", "--no-auto-optimize",
                 secret=SECRET, env={"BLAZING_TEST_COORD": coord.path,
                                     "BLAZING_TEST_GATE": "whose"})
    client = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                      secret=SECRET)
    cenv = {"BLAZING_REDIS_URL": redis_server.url, "BLAZING_NAMESPACE": ns}
    follower = None
    try:
        blocking = int(fm.expect(r"started worker.*lane=blocking pid=(\d+)")[1])
        slow = client.too_slow()
        with pytest.raises(TimeoutError, match="too_slow"):
            slow.result_sync(timeout=30)
        kinds = [e.kind for e in client.breadcrumbs(slow.unit_id).events]
        assert kinds == ["queued", "started", "timeout", "failed"], kinds

        handle = client.whose()
        held = coord.arrival()
        assert held.pid == blocking
        # The worker names the run it is on, as the foreman last recorded it (the
        # async worker's beat may still name the timed-out run for a beat or two).
        for _ in range(200):
            out = cli(cenv, "workers", "-o", "json")
            assert out.returncode == 0, out.stderr
            (foreman,) = json.loads(out.stdout)
            busy = [w for w in foreman["workers"] if w["current"] == f"{handle.unit_id}/0"]
            if busy:
                break
        assert [(w["lane"], w["pid"]) for w in busy] == [("blocking", blocking)]
        out = cli(cenv, "workers")
        assert f"{handle.unit_id}/0" in out.stdout and "serving" in out.stdout

        follower = subprocess.Popen(
            [sys.executable, "-m", "blazing.cli", "breadcrumbs", handle.unit_id, "--follow",
             "-o", "json"], cwd=ROOT, env={**os.environ, **cenv}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        assert follower.stdout is not None
        first = [json.loads(follower.stdout.readline())["kind"] for _ in range(2)]
        assert first == ["queued", "started"], "streamed while the run is still held"
        assert follower.poll() is None
        held.release()
        assert handle.result_sync(timeout=30) == blocking
        rest, err = follower.communicate(timeout=30)
        assert follower.returncode == 0, err
        assert [json.loads(line)["kind"] for line in rest.splitlines()] == ["succeeded"]
    finally:
        if follower is not None and follower.poll() is None:
            follower.kill()
            follower.communicate()
        client.stop_sync()
        fm.close()
        coord.close()
