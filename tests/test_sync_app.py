"""``SyncBlazing``: blocking calls from scripts, notebooks (a running loop) and threads."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from blazing import SyncBlazing, UnknownNameError
from blazing.codec import SerializationError


def register(app):
    @app.step
    def double(x: int) -> int:
        return x * 2

    @app.step
    def add_ten(x: int) -> int:
        return x + 10

    @app.workflow
    async def process_number(x: int) -> int:
        return await add_ten(await double(x))

    return process_number


def test_call_by_attribute_returns_result(sync_app):
    register(sync_app)
    assert sync_app.process_number(5) == 20
    assert sync_app.process_number(x=1) == 12


def test_run_by_name_and_by_function(sync_app):
    process_number = register(sync_app)
    assert sync_app.run("process_number", 5) == 20
    assert sync_app.run(process_number, 0) == 10


def test_steps_callable_as_runs_too(sync_app):
    register(sync_app)
    assert sync_app.double(21) == 42
    assert sync_app.run("add_ten", 1) == 11


def test_submit_returns_a_handle_before_the_run_ends(sync_app):
    process_number = register(sync_app)
    gate, entered = threading.Event(), threading.Event()

    @sync_app.step
    def gated(x: int) -> int:
        entered.set()
        assert gate.wait(30), "the test never opened the gate"
        return x

    held = sync_app.submit("gated", 7)  # would block for good if submit waited for the run
    assert entered.wait(30)
    assert held.status_sync() == "running"
    by_name = sync_app.submit("process_number", 5)
    by_function = sync_app.submit(process_number, x=1)
    assert by_name.unit_id != by_function.unit_id
    assert (by_name.result_sync(timeout=30), by_function.result_sync(timeout=30)) == (20, 12)
    gate.set()
    assert held.result_sync(timeout=30) == 7
    assert held.status_sync() == "succeeded"
    assert sync_app.get_run(held.unit_id).result_sync(timeout=30) == 7


def test_submit_refuses_what_cannot_run(sync_app):
    register(sync_app)
    with pytest.raises(UnknownNameError, match="'nope'.*process_number"):
        sync_app.submit("nope", 1)
    with pytest.raises(SerializationError, match="process_number"):
        sync_app.submit("process_number", threading.Lock())


def test_works_while_an_event_loop_runs_in_the_thread(sync_app):
    register(sync_app)

    async def cell():  # a Jupyter cell: a loop is already running here
        asyncio.get_running_loop()
        return sync_app.process_number(5), sync_app.run("process_number", 6)

    assert asyncio.run(cell()) == (20, 22)


def test_works_from_many_threads_at_once(sync_app):
    register(sync_app)
    gate = threading.Barrier(8, timeout=10)

    def call(x):
        gate.wait()  # all 8 threads call at the same moment
        return sync_app.process_number(x)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(8)))
    assert results == [x * 2 + 10 for x in range(8)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(sync_app.process_number, range(64)))
    assert results == [x * 2 + 10 for x in range(64)]


def test_publish_blocks_and_is_idempotent(sync_app):
    register(sync_app)
    assert sync_app.publish() is None
    assert sync_app.publish() is None
    assert sync_app.process_number(5) == 20
    assert sync_app.publish() is None
    assert sync_app.process_number(7) == 24


def test_context_manager():
    with SyncBlazing() as app:
        assert isinstance(app, SyncBlazing)
        register(app)
        assert app.process_number(5) == 20
    assert app._runtime.started is False  # leaving the block stopped it
    with app:  # and it can be entered again
        assert app.process_number(6) == 22


def test_workflow_exception_reaches_the_caller(sync_app):
    @sync_app.workflow
    async def boom(x):
        raise ValueError(f"bad {x}")

    with pytest.raises(ValueError, match="^bad 3$"):
        sync_app.boom(3)
