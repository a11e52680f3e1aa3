"""The public API on the Redis store: in-process workers, handles, dead letters, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import blazing
from blazing import Blazing, RemoteError, SyncBlazing
from tests.apps.durable import DurableError, make_app
from tests.support.workers import ROOT, WorkerFleet

pytestmark = pytest.mark.timeout(120)
SECRET = "redis-api-secret"


@pytest.fixture
def ns() -> str:
    return "api" + uuid.uuid4().hex[:10]


@pytest.fixture
def apps(redis_server, ns):
    """Factory of apps on the test's namespace, stopped afterwards."""
    made = []

    def factory(cls=Blazing, **options):
        app = cls(redis_url=redis_server.url, namespace=ns, secret=SECRET, **options)
        made.append(app)
        return app

    yield factory
    for app in made:
        app.stop() if isinstance(app, SyncBlazing) else app.stop_sync()


def test_quickstart_on_redis(apps):
    app = apps()

    @app.step
    async def fetch_data(item_id: str, services=None) -> dict:
        return {"id": item_id, "values": [1, 2, 3]}

    @app.step
    def transform_data(data: dict, services=None) -> dict:
        return {"id": data["id"], "result": sum(data["values"])}

    @app.workflow
    async def pipeline(item_id: str, services=None) -> dict:
        return await transform_data(await fetch_data(item_id, services=services))

    async def main():
        async with app:
            return await app.pipeline("123").wait_result(), await (await app.run(
                "pipeline", "123")).result()

    assert app.run_sync("pipeline", "123") == {"id": "123", "result": 6}
    app.stop_sync()
    assert asyncio.run(main()) == ({"id": "123", "result": 6},) * 2


def test_sync_app_on_redis(apps):
    app = apps(SyncBlazing)

    @app.step
    def double(x: int) -> int:
        return x * 2

    @app.step
    async def add_ten(x: int) -> int:
        return x + 10

    @app.workflow
    async def process_number(x: int) -> int:
        return await add_ten(await double(x))

    assert app.process_number(5) == 20
    assert app.run("process_number", 5) == 20


def test_dead_letters_and_requeue_replays_succeeded_steps(apps):
    app = apps()
    calls = {"prepare": 0, "flaky": 0}
    broken = {"on": True}

    @app.step
    async def prepare(x: int) -> int:
        calls["prepare"] += 1
        return x * 10

    @app.step
    async def flaky(x: int) -> int:
        calls["flaky"] += 1
        if broken["on"]:
            raise RuntimeError(f"flaky broke on {x}")
        return x + 1

    @app.workflow
    async def job(x: int) -> int:
        return await flaky(await prepare(x))

    handle = app.job(4)
    with pytest.raises(RuntimeError, match="flaky broke on 40"):
        handle.result_sync(timeout=30)
    failed = app.failed_runs()
    assert [r.unit_id for r in failed] == [handle.unit_id]
    assert failed[0].status == "failed" and failed[0].name == "job"
    assert failed[0].error_type == "builtins.RuntimeError"
    assert "flaky broke on 40" in failed[0].error_message

    broken["on"] = False
    app.requeue(handle.unit_id)
    again = app.get_run(handle.unit_id)
    assert again.result_sync(timeout=30) == 41
    assert calls == {"prepare": 1, "flaky": 2}, "the step that had succeeded was replayed"
    assert app.failed_runs() == []
    with pytest.raises(blazing.BlazingError, match="not failed or cancelled"):
        app.requeue(handle.unit_id)


def test_namespaces_never_see_each_other_s_work(redis_server):
    """Two namespaces on one Redis: a worker of one never takes the other's work, and
    neither's reads list the other's runs."""
    a, b = ("nsa" + uuid.uuid4().hex[:8]), ("nsb" + uuid.uuid4().hex[:8])
    made = []

    def app_on(ns: str, **options) -> Blazing:
        app = make_app(redis_url=redis_server.url, namespace=ns, secret=SECRET, **options)
        made.append(app)
        return app

    try:
        client_b = app_on(b, local_workers=False)
        waiting = client_b.three_incs(1)  # nobody serves b yet
        serving_a = app_on(a)
        assert serving_a.run_sync("three_incs", 10) == 13
        assert waiting.status_sync() == "pending"
        assert client_b.lanes()["async"]["depth"] == 1
        assert serving_a.lanes()["async"]["depth"] == 0
        assert waiting.unit_id not in {r.unit_id for r in serving_a.runs()}
        assert [r.unit_id for r in client_b.runs()] == [waiting.unit_id]
        serving_b = app_on(b)  # a worker of b's own (an app starts on first use)
        assert serving_b.run_sync("three_incs", 2) == 5
        assert waiting.result_sync(timeout=30) == 4
    finally:
        for app in made:
            app.stop_sync()


def test_failed_runs_pages_newest_first(apps, redis_server, ns):
    app = apps()

    @app.workflow
    async def doomed(i: int) -> None:
        raise ValueError(f"doomed {i}")

    units = []
    for i in range(5):  # one after another: their order is the order they failed in
        handle = app.doomed(i)
        with pytest.raises(ValueError):
            handle.result_sync(timeout=30)
        units.append(handle.unit_id)
    newest_first = units[::-1]
    assert [r.unit_id for r in app.failed_runs()] == newest_first
    assert [r.unit_id for r in app.failed_runs(limit=2)] == newest_first[:2]
    assert [r.unit_id for r in app.failed_runs(limit=2, offset=1)] == newest_first[1:3]
    assert [r.unit_id for r in app.failed_runs(limit=10, offset=3)] == newest_first[3:]
    assert app.failed_runs(offset=5) == []
    for bad in ({"limit": 0}, {"limit": -1}, {"offset": -1}, {"limit": "10"},
                {"limit": 2**21}):
        with pytest.raises(blazing.ConfigurationError, match=next(iter(bad))):
            app.failed_runs(**bad)
    env = {**os.environ, "BLAZING_REDIS_URL": redis_server.url, "BLAZING_NAMESPACE": ns}
    out = subprocess.run([sys.executable, "-m", "blazing.cli", "failed", "--limit", "2",
                          "--offset", "1", "--json"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert [r["unit_id"] for r in json.loads(out.stdout)] == newest_first[1:3]


def test_cli_lists_and_requeues(apps, redis_server, ns):
    app = apps()
    broken = {"on": True}

    @app.workflow
    async def fragile() -> str:
        if broken["on"]:
            raise ValueError("fragile is broken")
        return "mended"

    handle = app.fragile()
    with pytest.raises(ValueError):
        handle.result_sync(timeout=30)
    env = {**os.environ, "BLAZING_REDIS_URL": redis_server.url, "BLAZING_NAMESPACE": ns}
    cli = [sys.executable, "-m", "blazing.cli"]
    out = subprocess.run([*cli, "failed"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert handle.unit_id in out.stdout and "fragile is broken" in out.stdout
    broken["on"] = False
    out = subprocess.run([*cli, "requeue", handle.unit_id], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert app.get_run(handle.unit_id).result_sync(timeout=30) == "mended"
    out = subprocess.run([*cli, "requeue", "no-such-run"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1 and "no-such-run" in out.stderr


def test_exceptions_cross_processes(redis_server, ns, tmp_path: Path):
    fleet = WorkerFleet({"BLAZING_REDIS_URL": redis_server.url, "BLAZING_NAMESPACE": ns,
                         "BLAZING_SECRET": SECRET}, log=tmp_path / "workers.log")
    client = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                      secret=SECRET)
    try:
        fleet.start("async")
        with pytest.raises(DurableError, match="^importable$"):
            client.fail_importable("importable").result_sync(timeout=30)
        with pytest.raises(RemoteError) as info:
            client.fail_unimportable("gone").result_sync(timeout=30)
        assert "Vanishing" in info.value.type_name and info.value.message == "gone"
        assert "raise Vanishing(msg)" in info.value.remote_traceback
        with pytest.raises(TimeoutError, match="too_slow"):
            client.too_slow().result_sync(timeout=30)
    finally:
        client.stop_sync()
        fleet.close()


def test_cancel_on_redis(apps):
    app = apps()
    started = asyncio.Event()

    @app.step
    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    @app.workflow
    async def waits() -> None:
        await forever()

    async def main():
        h = app.waits()
        loop_started = asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(started.wait(), app._runtime.loop))
        await asyncio.wait_for(loop_started, 30)
        assert await h.cancel() is True
        with pytest.raises(blazing.RunCancelled):
            await h.result()
        assert await h.status() == "cancelled"

    app._ensure_started()
    asyncio.run(main())


def test_worker_cli_errors():
    """Exit codes: 2 for bad usage or settings, 3 when the app cannot be imported or
    Redis cannot be reached (none of these needs a server)."""
    from tests.support.redis_server import free_port

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "blazing.worker", *args], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                              capture_output=True, text=True, timeout=60)

    out = run("--app", "nope", "--type", "async")
    assert out.returncode == 2 and "module:attribute" in out.stderr
    out = run("--app", "no_such_module_xyz:app", "--type", "async")
    assert out.returncode == 3 and "no_such_module_xyz" in out.stderr
    out = run("--app", "tests.apps.durable:app", "--type", "async")
    assert out.returncode == 2 and "needs a Redis store" in out.stderr
    out = run("--app", "tests.apps.durable:app", "--type", "nope")
    assert out.returncode == 2 and "invalid choice" in out.stderr
    out = run("--app", "tests.apps.durable:app", "--type", "async", "--drain-timeout", "-1")
    assert out.returncode == 2 and "--drain-timeout must not be negative" in out.stderr
    out = run("--app", "tests.apps.durable:app", "--type", "async",
              BLAZING_REDIS_URL="redis://localhost:6379/0", BLAZING_LEASE_SECONDS="never")
    assert out.returncode == 2 and "BLAZING_LEASE_SECONDS='never'" in out.stderr
    # Nothing listens on the port: the worker says where it tried (password hidden).
    url = f"redis://user:sekret@127.0.0.1:{free_port()}/0"
    for kind in ("async", "blocking"):
        out = run("--app", "tests.apps.durable:app", "--type", kind,
                  BLAZING_REDIS_URL=url, BLAZING_CONNECT_TIMEOUT="1")
        assert out.returncode == 3, (kind, out.stderr)
        assert "cannot start on redis://user:***@127.0.0.1" in out.stderr, out.stderr
        assert "sekret" not in out.stderr and "blazing.worker ready" not in out.stdout


def test_unknown_runs_on_redis(apps, redis_server, ns):
    app = apps()

    @app.workflow
    async def one() -> int:
        return 1

    handle = app.one()
    assert handle.result_sync(timeout=30) == 1
    unknown = uuid.uuid4().hex
    with pytest.raises(blazing.errors.RunNotFound, match=unknown):
        app.get_run(unknown)
    with pytest.raises(blazing.errors.RunNotFound, match=unknown):
        app.requeue(unknown)
    with pytest.raises(TypeError, match="run id is a str"):
        app.get_run(12345)
    # A watch goes to Redis asynchronously (never waiting on the network in the
    # caller); a refused one fails its waiter with the same type.
    with pytest.raises(blazing.errors.RunNotFound, match=unknown):
        app._runtime.watch_run(unknown, "one").result_sync(timeout=30)

    # The run's records vanish (as when they expire): its handle says so.
    keys = redis_server.cli("--scan", "--pattern", f"{{{ns}}}:*{handle.unit_id}*").split()
    assert keys, "the run has keys of its own"
    redis_server.cli("DEL", *keys)
    with pytest.raises(blazing.errors.RunNotFound, match=handle.unit_id):
        handle.status_sync()
    with pytest.raises(blazing.errors.RunNotFound, match=handle.unit_id):
        handle.cancel_sync()
