"""Decorators: what they keep, what they refuse, and plain calls outside an app."""

import asyncio
import inspect
import sys
import threading

import pytest

import blazing
from blazing import Blazing


def test_wraps_keeps_name_doc_and_signature(app):
    async def fetch(item_id: str, limit: int = 3, *, services=None) -> dict:
        """Fetch an item."""
        return {}

    def crunch(x: float, y: float = 1.0) -> float:
        """Crunch numbers."""
        return x * y

    async def flow(a, b=2):
        """A flow."""

    for fn, deco in ((fetch, app.step), (crunch, app.step),
                     (crunch, app.step(step_type="BLOCKING")), (flow, app.workflow),
                     (flow, app.workflow(version_pins={"x": 1}))):
        wrapped = deco(fn)
        assert wrapped.__name__ == fn.__name__
        assert wrapped.__qualname__ == fn.__qualname__
        assert wrapped.__doc__ == fn.__doc__
        assert inspect.signature(wrapped) == inspect.signature(fn)
        assert wrapped.__wrapped__ is fn


def test_async_steps_stay_coroutine_functions(app):
    @app.step
    async def a():
        return 1

    @app.step(step_type="BLOCKING")
    async def b():
        return 1

    @app.workflow
    async def w():
        return 1

    @app.step
    def s():
        return 1

    for fn in (a, b, w):
        assert asyncio.iscoroutinefunction(fn)
    assert not asyncio.iscoroutinefunction(s)


@pytest.mark.skipif(sys.version_info < (3, 12),
                    reason="inspect honours coroutine markers from Python 3.12 on")
def test_async_steps_stay_inspect_coroutine_functions(app):
    # definitions._mark_coroutine_function marks async wrappers for inspect (3.12+).
    @app.step
    async def a():
        return 1

    @app.workflow
    async def w():
        return 1

    @app.step
    def s():
        return 1

    assert inspect.iscoroutinefunction(a)
    assert inspect.iscoroutinefunction(w)
    assert not inspect.iscoroutinefunction(s)


def test_direct_calls_outside_an_app_are_plain_calls(app):
    @app.step
    async def add(a, b):
        return a + b

    @app.step
    def mul(a, b):
        return a * b

    @app.workflow
    async def flow(x):
        return await add(x, 1) * mul(x, 2)

    coro = add(1, 2)
    assert inspect.iscoroutine(coro)
    assert asyncio.run(coro) == 3
    assert mul(3, b=4) == 12
    assert asyncio.run(flow(2)) == 12  # steps inside a direct call are plain too
    assert app._runtime.started is False  # no runtime, no queue, no run


def test_closures_inside_a_function(app):
    def main():
        factor = 7

        @app.step
        async def scale(x):
            return x * factor

        @app.step
        def shift(x, by):
            return x + by

        @app.workflow
        async def closure_flow(x):
            return await shift(await scale(x), by=factor)

        return closure_flow

    closure_flow = main()
    assert app.run_sync(closure_flow, 2) == 21


def test_positional_and_keyword_arguments(app):
    @app.step
    async def combine(a, b, c=0, *rest, d=1, **extra):
        return [a, b, c, list(rest), d, extra]

    @app.workflow
    async def flow(x, *, y):
        return [await combine(x, y), await combine(a=x, b=y, d=5),
                await combine(1, 2, 3, 4, 5, d=6, e=7)]

    async def main():
        return [await app.flow(1, y=2).result(), await (await app.run("flow", x=3, y=4)).result(),
                await app.combine(9, b=8).result()]

    got = asyncio.run(main())
    assert got[0] == [[1, 2, 0, [], 1, {}], [1, 2, 0, [], 5, {}],
                      [1, 2, 3, [4, 5], 6, {"e": 7}]]
    assert got[1][0] == [3, 4, 0, [], 1, {}]
    assert got[2] == [9, 8, 0, [], 1, {}]


@pytest.mark.parametrize("spelling, blocking", [
    ("BLOCKING", True), ("blocking", True), ("Blocking", True),
    ("NON_BLOCKING", False), ("NON-BLOCKING", False), ("non-blocking", False),
    ("Non_Blocking", False),
])
def test_step_type_spellings(app, spelling, blocking):
    @app.step(step_type=spelling)
    async def where():
        return threading.get_ident()

    @app.workflow
    async def flow():
        return threading.get_ident(), await where()

    wf_tid, step_tid = app.run_sync("flow")
    assert (step_tid != wf_tid) is blocking


@pytest.mark.parametrize("bad", ["FAST", "", "async", "NONBLOCKING", "sync"])
def test_bad_step_type_is_refused_at_decoration(app, bad):
    with pytest.raises(blazing.DefinitionError, match=r"'BLOCKING'.*'NON_BLOCKING'") as info:
        @app.step(step_type=bad)
        async def s():
            return 1
    assert repr(bad) in str(info.value)
    assert "s" not in app.definitions


def test_sandboxed_is_refused_at_decoration(app):
    with pytest.raises(blazing.DefinitionError, match="sandboxed=True"):
        @app.step(sandboxed=True)
        async def s():
            return 1
    assert app.definitions == {}


def test_version_pins_accepted(app):
    @app.workflow(version_pins={"numpy": "1.26", "model": 3})
    async def pinned(x):
        return x + 1

    assert app.definitions["pinned"].version_pins == {"numpy": "1.26", "model": 3}
    assert app.run_sync(pinned, 1) == 2


def test_sync_workflow_refused(app):
    with pytest.raises(blazing.DefinitionError, match="async def"):
        @app.workflow
        def wf():
            return 1


def test_plain_def_with_non_blocking_refused(app):
    with pytest.raises(blazing.DefinitionError, match="plain def"):
        @app.step(step_type="NON_BLOCKING")
        def s():
            return 1


@pytest.mark.parametrize("options, match", [
    ({"retries": -1}, "retries"),
    ({"retries": 1.5}, "retries"),
    ({"timeout": "x"}, "timeout"),
    ({"timeout": -1}, "timeout"),
    ({"retry_backoff": float("nan")}, "retry_backoff"),
    ({"retries": 2**70}, "retries=1180591620717411303424 is more than 1,048,576"),
    ({"timeout": 1e300}, "timeout=1e[+]300 is more than 1,000,000,000 seconds"),
    ({"retry_backoff_max": -1}, "retry_backoff_max= must not be negative"),
    ({"retry_backoff_max": "1m"}, "retry_backoff_max= must be a number of seconds"),
    ({"retry_backoff_max": float("inf")}, "retry_backoff_max"),
    ({"retry_backoff_max": True}, "retry_backoff_max"),
    ({"priority": "high"}, "priority= must be an int"),
    ({"priority": 1.5}, "priority= must be an int"),
    ({"priority": True}, "priority= must be an int"),
    ({"priority": 2**20 + 1}, "priority=1048577 is out of range: from -1,048,576 to 1,048,576"),
    ({"priority": -(2**20) - 1}, "priority=-1048577 is out of range"),
    ({"priority": 2**64}, "priority=18446744073709551616 is out of range"),
    ({"queue": "emails"}, "queue='emails': named queues are not offered"),
    ({"queue": 3}, "queue=3"),
])
def test_bad_options_refused_at_decoration(app, options, match):
    with pytest.raises(blazing.DefinitionError, match=match):
        @app.step(**options)
        async def s():
            return 1
    with pytest.raises(blazing.DefinitionError, match=match):
        @app.workflow(**options)
        async def w():
            return 1


def test_options_at_their_bounds_and_the_default_queue_are_accepted(app):
    @app.step(priority=2**20, queue="default", retries=0, retry_backoff=0,
              retry_backoff_max=10**9, timeout=10**9)
    async def first():
        return "first"

    @app.workflow(priority=-(2**20), queue=None)
    async def last():
        return await first()

    assert app.run_sync("last") == "first"


def test_unknown_attribute_is_unknown_name_error(app):
    @app.workflow
    async def alpha():
        return 1

    @app.step
    async def beta():
        return 2

    with pytest.raises(blazing.UnknownNameError, match=r"'nope'.*alpha, beta"):
        app.nope  # noqa: B018
    with pytest.raises(AttributeError):
        app.nope  # noqa: B018
    assert not hasattr(app, "nope")
    assert getattr(app, "nope", None) is None


def test_run_unknown_name_names_registered_ones(app):
    @app.workflow
    async def alpha():
        return 1

    async def main():
        await app.run("nope")

    with pytest.raises(blazing.UnknownNameError, match=r"'nope'.*registered: alpha"):
        asyncio.run(main())
    with pytest.raises(blazing.UnknownNameError, match=r"'nope'.*registered: alpha"):
        app.run_sync("nope")


def test_redefinition_replaces_earlier(app):
    @app.workflow
    async def cell():
        return "old"

    @app.workflow  # a re-run notebook cell
    async def cell():  # noqa: F811
        return "new"

    assert app.run_sync("cell") == "new"


def test_decorator_works_on_sync_app_too():
    app = Blazing()  # never started: decoration alone needs no runtime
    sync_app = blazing.SyncBlazing()
    for a in (app, sync_app):
        @a.step
        def s(x):
            """Doc."""
            return x

        assert s(3) == 3 and s.__doc__ == "Doc."
        assert a._runtime.started is False
