"""The ``RemoteRun`` handle and the async app's lifecycle calls."""

import asyncio
import dataclasses
import re
import threading
import uuid
from datetime import date, datetime, time
from decimal import Decimal

import pytest

import blazing
from blazing import RemoteRun
from blazing.errors import EngineClosedError


def register(app):
    executions = []

    @app.step
    def triple(x):
        return 3 * x

    @app.workflow
    async def count(x):
        executions.append(x)
        return await triple(x)

    return executions


def test_async_methods(app):
    register(app)

    async def main():
        h = app.count(2)
        assert isinstance(h, RemoteRun)
        assert await h.wait() is None
        assert await h.result() == 6
        assert await h.wait_result() == 6
        assert await h.status() == "succeeded"
        assert await h.cancel() is False  # finished already
        assert await h.status() == "succeeded"

    asyncio.run(main())


def test_sync_twins(app):
    register(app)
    h = app.count(4)
    assert h.wait_sync(5) is None
    assert h.result_sync() == 12
    assert h.result_sync(5) == 12
    assert h.wait_result_sync() == 12
    assert h.status_sync() == "succeeded"
    assert h.cancel_sync() is False
    assert h.status_sync() == "succeeded"


def test_sync_timeouts_raise_timeout_error(app):
    release = threading.Event()

    @app.step
    def hold():
        release.wait(10)
        return "done"

    @app.workflow
    async def slow():
        return await hold()

    h = app.slow()
    try:
        with pytest.raises(TimeoutError, match="slow"):
            h.result_sync(0.05)
        with pytest.raises(TimeoutError, match="slow"):
            h.wait_sync(0.05)
    finally:
        release.set()
    assert h.result_sync(5) == "done"


def test_failure_through_every_result_method(app):
    @app.workflow
    async def broken():
        raise LookupError("nothing here")

    async def main():
        h = app.broken()
        await h.wait()  # waiting never raises
        for method in (h.result, h.wait_result):
            with pytest.raises(LookupError, match="^nothing here$"):
                await method()
        assert await h.status() == "failed"
        return h

    h = asyncio.run(main())
    h.wait_sync()
    for method in (h.result_sync, h.wait_result_sync):
        with pytest.raises(LookupError, match="^nothing here$"):
            method()
    assert h.status_sync() == "failed"


def test_unit_id_is_unique_hex(app):
    register(app)

    async def main():
        handles = [app.count(i) for i in range(20)]
        handles.append(await app.run("count", 1))
        handles.append(await app.count(2))
        await asyncio.gather(*(h.wait() for h in handles))
        return handles

    handles = asyncio.run(main())
    ids = [h.unit_id for h in handles]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_one_call_makes_exactly_one_run(app):
    executions = register(app)

    async def main():
        h = app.count(7)
        assert await h is h
        assert await h is h
        results = [await h.result(), await h.wait_result(), await h.result()]
        await h.wait()
        await asyncio.gather(h.result(), h.wait_result(), h.wait())
        return h, results

    h, results = asyncio.run(main())
    assert results == [21, 21, 21]
    assert h.result_sync() == 21 and h.wait_result_sync() == 21
    h.wait_sync()
    assert executions == [7]
    assert app.lanes()["async"]["depth"] == 0
    assert app.lanes()["async"]["running"] == 0
    h2 = app.count(8)
    assert h2.unit_id != h.unit_id and h2.result_sync(5) == 24
    assert executions == [7, 8]


def test_awaited_call_returns_submitted_handle(app):
    executions = register(app)

    async def main():
        h = await app.count(1)
        assert isinstance(h, RemoteRun)
        h_run = await app.run("count", 2)
        return await h.result(), await h_run.result()

    assert asyncio.run(main()) == (3, 6)
    assert sorted(executions) == [1, 2]


def test_async_with_and_idempotent_publish(app):
    register(app)

    async def main():
        assert await app.publish() is None
        assert await app.publish() is None
        async with app as entered:
            assert entered is app
            assert await app.publish() is None
            assert await app.count(1).wait_result() == 3
            assert await (await app.run("count", 2)).result() == 6

    asyncio.run(main())
    assert app._runtime.started is False and app._runtime.stopping is False


def test_start_and_stop(app):
    register(app)

    async def main():
        await app.start()
        await app.start()  # idempotent
        assert await app.count(5).result() == 15
        await app.stop()

    asyncio.run(main())
    assert app._runtime.started is False
    # A stopped app starts afresh when used again (a second asyncio.run, a new cell).
    assert app.run_sync("count", 1) == 3
    asyncio.run(main())


def test_sync_calls_while_another_loop_runs_in_the_thread(app):
    register(app)

    async def cell():  # a Jupyter cell
        asyncio.get_running_loop()
        assert app.publish_sync() is None
        assert app.publish_sync() is None
        return app.run_sync("count", 3)

    assert asyncio.run(cell()) == 9
    assert asyncio.run(cell()) == 9  # a second, new loop in the same thread


def test_run_sync_inside_a_workflow_is_a_clear_error(app):
    register(app)

    @app.workflow
    async def nested():
        try:
            app.run_sync("count", 1)
        except blazing.BlazingError as exc:
            return str(exc)
        return "no error"

    message = asyncio.run(asyncio.wait_for(app.nested().result(), 10))
    assert "would block" in message and "await" in message


def test_result_sync_inside_a_workflow_is_a_clear_error(app):
    register(app)

    @app.workflow
    async def nested():
        h = app.count(1)
        try:
            h.result_sync()
        except blazing.BlazingError as exc:
            return str(exc), await h.result()
        return "no error", None

    message, value = app.run_sync("nested")
    assert "result_sync" in message and "would block" in message
    assert value == 3


@dataclasses.dataclass
class Point:
    x: int
    y: float


def test_values_round_trip_through_a_run(app):
    value = {
        "none": None, "flag": True, "big": 2**100, "float": 42.0, "text": "é",
        "raw": b"\x00\xff", "list": [1, (2, 3)], "tuple": (1, [2]), "set": {1, 2},
        1: "int key", (1, 2): "tuple key", "when": datetime(2024, 1, 2, 3, 4, 5),
        "day": date(2024, 1, 2), "at": time(3, 4), "money": Decimal("1.10"),
        "id": uuid.UUID(int=7), "point": Point(1, 2.0),
    }

    @app.step
    def echo_blocking(v):
        return v

    @app.step
    async def echo(v):
        return await echo_blocking(v)

    @app.workflow
    async def round_trip(v):
        return await echo(v)

    got = app.run_sync("round_trip", value)
    assert got == value
    assert list(got) == list(value)  # order kept
    assert [type(v) for v in got.values()] == [type(v) for v in value.values()]
    assert type(got["list"][1]) is tuple and type(got["tuple"][1]) is list


def test_stop_fails_runs_still_unfinished_after_the_drain(make_app):
    app = make_app(drain_timeout=0.1)
    started = threading.Event()

    @app.step
    async def forever():
        started.set()
        await asyncio.Event().wait()

    @app.workflow
    async def stuck():
        return await forever()

    h = app.stuck()
    assert started.wait(5)
    app.stop_sync()
    with pytest.raises(EngineClosedError):
        h.result_sync(5)
