"""Where and how steps run: lanes, threads, parallelism, nesting, timeouts, retries."""

import asyncio
import inspect
import itertools
import threading
import time
import uuid

import pytest

from blazing.context import current


def _loop_running():
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_blocking_steps_never_run_on_the_event_loop_thread(app):
    @app.step
    def sync_step(i):
        return threading.get_ident(), _loop_running()

    @app.step(step_type="BLOCKING")
    def blocking_sync(i):
        return threading.get_ident(), _loop_running()

    @app.step(step_type="BLOCKING")
    async def blocking_async(i):
        return threading.get_ident(), asyncio.get_running_loop() is not None

    @app.workflow
    async def flow():
        tid = threading.get_ident()
        calls = [f(i) for i in range(5) for f in (sync_step, blocking_sync, blocking_async)]
        return tid, await asyncio.gather(*calls)

    wf_tid, results = app.run_sync("flow")
    assert len(results) == 15
    for i, (tid, loop_running) in enumerate(results):
        assert tid != wf_tid
        if i % 3 != 2:
            assert loop_running is False  # a sync step sees no event loop
        else:
            assert loop_running is True  # an async BLOCKING step has its own loop


def test_async_steps_run_on_the_workflow_loop_thread(app):
    @app.step
    async def where():
        return threading.get_ident()

    @app.workflow
    async def flow():
        tid = threading.get_ident()
        return tid, await asyncio.gather(*(where() for _ in range(5)))

    wf_tid, tids = app.run_sync("flow")
    assert tids == [wf_tid] * 5


def test_gather_runs_async_steps_in_parallel_and_keeps_order(app):
    n = 8
    state = {}

    @app.step
    async def part(i):
        state["started"] += 1
        if state["started"] == n:  # only reachable if all n run at the same time
            state["events"][n - 1].set()
        await state["events"][i].wait()
        if i:  # release in reverse: part n-1 finishes first, part 0 last
            state["events"][i - 1].set()
        return i * 10

    @app.workflow
    async def fan_out():
        state["started"] = 0
        state["events"] = [asyncio.Event() for _ in range(n)]
        return await asyncio.wait_for(asyncio.gather(*(part(i) for i in range(n))), 10)

    assert app.run_sync("fan_out") == [i * 10 for i in range(n)]


def test_gather_runs_blocking_steps_in_parallel(make_app):
    n = 6
    app = make_app(worker_config={"blocking_workers": n})
    barrier = threading.Barrier(n, timeout=10)

    @app.step
    def part(i):
        barrier.wait()  # passes only when all n threads wait at once
        return threading.get_ident(), i

    @app.workflow
    async def fan_out():
        return await asyncio.wait_for(asyncio.gather(*(part(i) for i in range(n))), 10)

    results = app.run_sync("fan_out")
    assert [i for _, i in results] == list(range(n))
    assert len({tid for tid, _ in results}) == n


def test_hundred_runs_in_flight_at_once(app):
    n = 100
    state = {"started": 0, "all": None}

    @app.step
    async def square(x):
        return x * x

    @app.workflow
    async def job(x):
        if state["all"] is None:
            state["all"] = asyncio.Event()
        state["started"] += 1
        if state["started"] == n:
            state["all"].set()
        await asyncio.wait_for(state["all"].wait(), 10)  # all n runs are running now
        return await square(x)

    async def main():
        handles = [app.job(i) for i in range(n)]
        assert len({h.unit_id for h in handles}) == n
        return await asyncio.gather(*(h.result() for h in handles))

    assert asyncio.run(main()) == [i * i for i in range(n)]


def test_steps_four_deep(app):
    def depth():
        return current.get().depth

    @app.step
    async def level4():
        return [depth()]

    @app.step
    def level3():
        return [depth(), *level4()]

    @app.step(step_type="BLOCKING")
    async def level2():
        return [depth(), *await level3()]

    @app.step
    async def level1():
        return [depth(), *await level2()]

    @app.workflow
    async def top():
        return [depth(), *await level1()]

    assert app.run_sync("top") == [0, 1, 2, 3, 4]


def test_nested_blocking_chain_deeper_than_threads(make_app):
    app = make_app(worker_config={"blocking_workers": 1})

    @app.step(step_type="BLOCKING")
    def chain(n):
        if n == 0:
            return [threading.get_ident()]
        return [threading.get_ident(), *chain(n - 1)]

    @app.workflow
    async def flow():
        return await asyncio.wait_for(chain(4), 10)  # five nested blocking calls

    tids = app.run_sync("flow")
    assert len(tids) == 5
    assert len(set(tids)) == 5  # each level waits in its own thread


def test_sync_step_calling_a_step_gets_the_value(app):
    @app.step
    def inner(x):
        return x + 1

    @app.step
    async def inner_async(x):
        return x * 2

    @app.step
    def outer(x):
        a = inner(x)
        b = inner_async(x)
        assert not inspect.isawaitable(a) and not inspect.isawaitable(b)
        return a, b

    @app.workflow
    async def flow(x):
        return await outer(x)

    assert app.run_sync("flow", 5) == (6, 10)


def test_wait_for_on_a_step_raises_timeout_error_in_the_workflow(app):
    cancelled = threading.Event()

    @app.step
    async def forever():
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    @app.step
    async def quick():
        return "quick"

    @app.workflow
    async def flow():
        try:
            await asyncio.wait_for(forever(), 0.2)
        except asyncio.TimeoutError:  # the builtin TimeoutError from 3.11, not on 3.10
            return "timed out", await quick()
        return "finished"

    assert app.run_sync("flow") == ("timed out", "quick")
    assert cancelled.wait(5)  # the abandoned call was cancelled, not left running


def test_step_timeout_option(app):
    @app.step(timeout=0.2)
    async def forever():
        await asyncio.Event().wait()

    @app.workflow
    async def caught():
        try:
            await forever()
        except TimeoutError as exc:
            return str(exc)

    @app.workflow
    async def uncaught():
        return await forever()

    assert "forever" in app.run_sync("caught")
    with pytest.raises(TimeoutError, match="forever"):
        app.run_sync("uncaught")


def test_step_timeout_option_on_blocking_step(app):
    release = threading.Event()

    @app.step(timeout=0.2)
    def stuck():
        release.wait(10)  # blocked until the test ends

    @app.workflow
    async def flow():
        return await stuck()

    try:
        with pytest.raises(TimeoutError, match="stuck"):
            app.run_sync("flow")
    finally:
        release.set()


ATTEMPTS = []


def test_retries_then_success(app):
    ATTEMPTS.clear()

    @app.step(retries=2)
    async def flaky(x):
        ATTEMPTS.append(x)
        if len(ATTEMPTS) < 3:
            raise ConnectionError(f"attempt {len(ATTEMPTS)} failed")
        return x * 2

    @app.workflow
    async def flow(x):
        return await flaky(x)

    assert app.run_sync("flow", 21) == 42
    assert ATTEMPTS == [21, 21, 21]


def test_retries_on_blocking_step(app):
    ATTEMPTS.clear()

    @app.step(retries=2)
    def flaky():
        ATTEMPTS.append(threading.get_ident())
        if len(ATTEMPTS) < 3:
            raise OSError("not yet")
        return "ok"

    @app.workflow
    async def flow():
        return await flaky()

    assert app.run_sync("flow") == "ok"
    assert len(ATTEMPTS) == 3


def test_retries_exhausted_raise_the_original_exception(app):
    ATTEMPTS.clear()

    @app.step(retries=2)
    async def broken():
        ATTEMPTS.append(1)
        raise ConnectionRefusedError(f"try {len(ATTEMPTS)}")

    @app.workflow
    async def flow():
        return await broken()

    with pytest.raises(ConnectionRefusedError, match="^try 3$"):
        app.run_sync("flow")
    assert len(ATTEMPTS) == 3


def attempt_gaps(app, **options) -> list[float]:
    """Run a step that fails on every attempt but the last (with ``options``); return the
    seconds between the starts of its attempts."""
    starts: list[float] = []

    @app.step(**options)
    async def stubborn():
        starts.append(time.monotonic())
        if len(starts) <= options["retries"]:
            raise ConnectionError(f"attempt {len(starts)} failed")
        return len(starts)

    @app.workflow
    async def flow():
        return await stubborn()

    assert app.run_sync("flow") == options["retries"] + 1
    return [b - a for a, b in itertools.pairwise(starts)]


# The retry delay has equal jitter: between half of the computed delay and all of it. The
# gaps measured also hold the time a failure takes to be recorded, so only lower bounds
# are exact; an upper bound is asserted only where it is far from what is measured.
SLACK = 0.01  # the core computes its delays in milliseconds


def test_retry_backoff_doubles_per_attempt(app):
    gaps = attempt_gaps(app, retries=3, retry_backoff=0.2)
    lows = (0.1, 0.2, 0.4)
    assert [g >= low - SLACK for g, low in zip(gaps, lows, strict=True)] == [True] * 3, gaps


def test_retry_backoff_max_caps_the_delay(app):
    # Uncapped, a 30 s backoff would wait at least 15 s before the first retry.
    gaps = attempt_gaps(app, retries=3, retry_backoff=30, retry_backoff_max=0.2)
    assert all(0.1 - SLACK <= g < 15 for g in gaps), gaps


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_priority_orders_waiting_work_in_a_lane(request, make_app, store):
    """With the lane's one thread busy, waiting steps of higher priority run first, and
    steps of equal priority in the order they were submitted."""
    options = {"worker_config": {"blocking_workers": 1, "auto_optimize": False}}
    if store == "redis":
        server = request.getfixturevalue("redis_server")
        options.update(redis_url=server.url, namespace="prio" + uuid.uuid4().hex[:8])
    app = make_app(**options)
    busy, release, order = threading.Event(), threading.Event(), []

    @app.step
    def hold():
        busy.set()
        assert release.wait(60), "the test never released the lane"
        return "held"

    @app.step(priority=-3)
    def low(i):
        order.append(("low", i))

    @app.step
    def normal(i):
        order.append(("normal", i))

    @app.step(priority=7)
    def high(i):
        order.append(("high", i))

    held = app.hold()
    assert busy.wait(30)
    handles = [app.low(i) for i in range(3)] + [app.normal(i) for i in range(3)] + \
        [app.high(i) for i in range(3)]
    # A submit returns before its step is queued: release the lane only once all 9 wait.
    deadline = time.monotonic() + 30
    while app.lanes()["blocking"]["depth"] < len(handles):
        assert time.monotonic() < deadline, app.lanes()
        time.sleep(0.01)  # polling the store's queue depth, bounded above
    release.set()
    assert held.result_sync(timeout=30) == "held"
    for h in handles:
        h.result_sync(timeout=30)
    assert order == [(kind, i) for kind in ("high", "normal", "low") for i in range(3)]


def test_workflow_timeout_option(app):
    cancelled = threading.Event()

    @app.step
    async def forever():
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    @app.workflow(timeout=0.2)
    async def slow():
        return await forever()

    with pytest.raises(TimeoutError, match="slow"):
        app.run_sync("slow")
    assert cancelled.wait(5)  # the step under the timed-out workflow was stopped too


def test_unawaited_calls_are_cancelled_when_the_caller_finishes(app):
    state, cancelled = {}, threading.Event()

    @app.step
    async def orphan():
        state["started"].set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    @app.workflow
    async def careless():
        state["started"] = asyncio.Event()
        orphan()  # called, never awaited
        await asyncio.wait_for(state["started"].wait(), 10)
        return "done"

    assert app.run_sync("careless") == "done"
    assert cancelled.wait(5)
