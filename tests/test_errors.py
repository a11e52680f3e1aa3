"""Errors: exceptions crossing runs, statuses, cancellation, refused inputs and configs."""

import asyncio
import threading
import uuid
import warnings

import pytest

import blazing
from blazing import Blazing, codec
from blazing.errors import EngineClosedError, NativeError, RunNotFound
from blazing.run import ResultSlot


class InventoryError(Exception):
    """A user exception defined at module level."""


class CodedError(Exception):
    def __init__(self, code, detail):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


@pytest.mark.parametrize("exc", [
    ValueError("bad value 42"),
    InventoryError("out of stock: widget"),
    KeyError("missing-key"),
    CodedError(404, "not found"),
])
@pytest.mark.parametrize("blocking", [False, True])
def test_step_exception_reaches_the_client_unchanged(app, exc, blocking):
    if blocking:
        @app.step
        def fail():
            raise exc
    else:
        @app.step
        async def fail():
            raise exc

    @app.workflow
    async def flow():
        return await fail()

    async def main():
        with pytest.raises(type(exc)) as info:
            await app.flow().result()
        return info.value

    got = asyncio.run(main())
    assert type(got) is type(exc)
    assert got.args == exc.args
    assert str(got) == str(exc)
    if isinstance(exc, CodedError):
        assert (got.code, got.detail) == (404, "not found")
    with pytest.raises(type(exc)) as info:
        app.run_sync("flow")
    assert info.value.args == exc.args


def test_workflow_catches_a_step_exception(app):
    @app.step
    async def fail(x):
        raise InventoryError(f"no {x}")

    @app.workflow
    async def flow():
        try:
            await fail("bolts")
        except InventoryError as exc:
            return f"handled: {exc}"

    assert app.run_sync("flow") == "handled: no bolts"


def test_status_transitions(app):
    started, release = threading.Event(), threading.Event()

    @app.step
    def gate():
        started.set()
        release.wait(10)
        return "released"

    @app.workflow
    async def slow():
        return await gate()

    @app.workflow
    async def broken():
        raise InventoryError("broken")

    async def main():
        h = app.slow()
        assert await h.status() in ("pending", "running")
        assert await asyncio.to_thread(started.wait, 5)
        assert await h.status() == "running"
        release.set()
        assert await h.result() == "released"
        assert await h.status() == "succeeded"
        bad = app.broken()
        await bad.wait()
        assert await bad.status() == "failed"
        with pytest.raises(InventoryError, match="broken"):
            await bad.result()

    try:
        asyncio.run(main())
    finally:
        release.set()


def _blocked_workflow(app):
    """A workflow waiting on a step blocked on an Event; records the step's cancellation."""
    started, seen = threading.Event(), threading.Event()
    record = []

    @app.step
    async def blocked():
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            record.append("cancelled")
            raise
        finally:
            record.append("finally")
            seen.set()

    @app.workflow
    async def waiter():
        return await blocked()

    return started, seen, record


def test_cancel(app):
    started, seen, record = _blocked_workflow(app)

    async def main():
        h = app.waiter()
        assert await asyncio.to_thread(started.wait, 5)
        assert await h.cancel() is True
        with pytest.raises(blazing.RunCancelled):
            await h.result()
        assert await h.status() == "cancelled"
        assert await asyncio.to_thread(seen.wait, 5)
        assert await h.cancel() is False  # already finished

    asyncio.run(main())
    assert record == ["cancelled", "finally"]


def test_cancel_sync(app):
    started, seen, record = _blocked_workflow(app)
    h = app.waiter()
    assert started.wait(5)
    assert h.cancel_sync() is True
    with pytest.raises(blazing.RunCancelled):
        h.result_sync(5)
    assert h.status_sync() == "cancelled"
    assert seen.wait(5)
    assert record == ["cancelled", "finally"]
    assert h.cancel_sync() is False


def test_run_cancelled_is_not_asyncio_cancelled_error():
    assert issubclass(blazing.RunCancelled, Exception)
    assert not issubclass(blazing.RunCancelled, asyncio.CancelledError)


def test_unserializable_argument_refused_at_submit(app):
    @app.workflow
    async def takes_anything(x):
        return 1

    with pytest.raises(codec.SerializationError, match="takes_anything"):
        app.takes_anything(lambda: 1)
    with pytest.raises(codec.SerializationError, match="takes_anything"):
        app.run_sync("takes_anything", lambda: 1)
    assert app.run_sync("takes_anything", 1) == 1


def test_argument_over_max_value_bytes_refused(make_app):
    app = make_app(max_value_bytes=1000)
    ran = []

    @app.workflow
    async def store(blob):
        ran.append(len(blob))
        return len(blob)

    before = app.lanes()
    with pytest.raises(codec.ValueTooLargeError, match="1000"):
        app.store(b"x" * 2000)
    assert app.lanes()["async"]["depth"] == before["async"]["depth"] == 0
    assert app.run_sync("store", b"x" * 10) == 10
    assert ran == [10]  # the refused run never existed


def test_result_over_max_value_bytes_fails_the_run(make_app):
    app = make_app(max_value_bytes=1000)

    @app.step
    async def big():
        return "y" * 5000

    @app.workflow
    async def flow():
        return await big()

    with pytest.raises(codec.ValueTooLargeError):
        app.run_sync("flow")


def test_unserializable_result_names_the_step(app):
    @app.step
    async def make_lambda():
        return lambda: 1

    @app.step
    def make_generator():
        return (i for i in range(3))

    @app.workflow
    async def flow():
        return await make_lambda()

    @app.workflow
    async def flow2():
        return await make_generator()

    with pytest.raises(codec.SerializationError, match="make_lambda"):
        app.run_sync("flow")
    with pytest.raises(codec.SerializationError, match="make_generator"):
        app.run_sync("flow2")


def test_unknown_names(app):
    @app.workflow
    async def known():
        return 1

    with pytest.raises(blazing.UnknownNameError, match=r"'ghost'.*known"):
        app.ghost()
    with pytest.raises(blazing.UnknownNameError, match=r"'ghost'.*known"):
        app.run_sync("ghost")

    async def main():
        await app.run("ghost")

    with pytest.raises(blazing.UnknownNameError, match=r"'ghost'.*known"):
        asyncio.run(main())


def test_redis_url_selection_and_bad_urls(monkeypatch):
    monkeypatch.delenv("BLAZING_REDIS_URL", raising=False)
    assert Blazing(redis_url="redis://x:6379/0").settings.redis_url == "redis://x:6379/0"
    assert Blazing(api_url="rediss://y").settings.redis_url == "rediss://y"
    monkeypatch.setenv("BLAZING_REDIS_URL", "redis://from-env")
    assert Blazing().settings.redis_url == "redis://from-env"
    assert Blazing(redis_url="redis://explicit").settings.redis_url == "redis://explicit"
    with pytest.raises(blazing.ConfigurationError, match="must start with one of"):
        Blazing(redis_url="http://nope")
    # The password never reaches the message.
    with pytest.raises(blazing.ConfigurationError) as info:
        Blazing(redis_url="mysql://user:hunter2@db/0")
    assert "hunter2" not in str(info.value)
    monkeypatch.delenv("BLAZING_REDIS_URL")
    with pytest.raises(blazing.ConfigurationError, match="local_workers=False needs a Redis"):
        Blazing(local_workers=False)


def test_non_redis_api_url_warns_once_and_works(make_app):
    with pytest.warns(UserWarning, match="api_url='http://x' is ignored") as caught:
        app = make_app(api_url="http://x", api_token="secret-token")
    assert len([w for w in caught if "api_url" in str(w.message)]) == 1

    @app.workflow
    async def ping():
        return "pong"

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no further warnings while working
        assert app.run_sync("ping") == "pong"


def test_api_url_warning_points_at_the_callers_line():
    with pytest.warns(UserWarning, match="api_url") as caught:
        app = Blazing(api_url="https://api.example")
    app.stop_sync()
    assert caught[0].filename == __file__, f"warning attributed to {caught[0].filename}"


def test_event_thread_ends_when_the_engine_is_closed(app):
    # The event thread can call wait() right after stop() closed the engine;
    # it must then end, not retry forever (stop() would wait 10 s on it).
    @app.workflow
    async def one():
        return 1

    assert app.run_sync("one") == 1
    rt = app._runtime
    closed_session = rt.session
    app.stop_sync()
    calls = []

    class Probe:
        def wait(self, timeout_ms):
            calls.append(timeout_ms)
            if len(calls) == 1:
                return closed_session.wait(timeout_ms)  # the real, closed engine
            raise EngineClosedError()  # ends the loop if the first error did not

    rt.session = Probe()
    thread = threading.Thread(target=rt._events_main, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    assert len(calls) == 1


@pytest.mark.parametrize("config, match", [
    ({"bogus": 1}, "bogus"),
    ({"async_worker": 4}, "async_worker"),
    ({"blocking_workers": -1}, "blocking_workers"),
    ({"blocking_workers": "2"}, "blocking_workers"),
    ({"blocking_workers": True}, "blocking_workers"),
    ({"async_workers": 0}, "async_workers"),
    ({"async_workers": 2.5}, "async_workers"),
    ({"auto_optimize": "yes"}, "auto_optimize"),
    ({"optimization_interval": -5}, "optimization_interval"),
    ({"optimization_interval": "soon"}, "optimization_interval"),
])
def test_bad_worker_config_is_a_configuration_error(config, match):
    with pytest.raises(blazing.ConfigurationError, match=match):
        Blazing(worker_config=config)


def test_documented_worker_config_accepted(make_app):
    app = make_app(worker_config={"async_workers": 4, "blocking_workers": 2,
                                  "auto_optimize": True, "optimization_interval": 30})

    @app.workflow
    async def ok():
        return "ok"

    assert app.run_sync("ok") == "ok"


def test_malformed_args_payload_fails_the_run_and_app_keeps_serving(app):
    ran = []

    @app.workflow
    async def wf_name(x=0):
        ran.append(x)
        return x + 1

    async def main():
        await app.start()
        rt = app._runtime
        slot = ResultSlot()
        token = rt.new_token(slot.set)
        unit = uuid.uuid4().hex
        rt.send_now([[1, unit, "0", "", 0, "wf_name", 0, b"\xc1garbage", token,
                      0, 0, 0, 0, 0]])
        await asyncio.wait_for(slot.wait(), 5)
        with pytest.raises(codec.MalformedPayloadError, match="wf_name"):
            slot.value()
        assert rt.status(unit) == "failed"
        assert ran == []
        return await asyncio.gather(*(app.wf_name(i).result() for i in range(5)))

    assert asyncio.run(main()) == [1, 2, 3, 4, 5]
    assert ran == list(range(5))


def test_cancel_while_in_a_blocking_step(app):
    started, release = threading.Event(), threading.Event()

    @app.step
    def hold():
        started.set()
        release.wait(10)
        return "late"

    @app.workflow
    async def waiter():
        return await hold()

    h = app.waiter()
    try:
        assert started.wait(5)
        assert h.cancel_sync() is True
        with pytest.raises(blazing.RunCancelled):
            h.result_sync(5)
        assert h.status_sync() == "cancelled"
    finally:
        release.set()
    assert app.run_sync("waiter") == "late"  # the app still serves afterwards


# ------------------------------------------------- option types, unknown runs

@pytest.mark.parametrize("option, value", [
    ("redis_url", 12345),
    ("redis_url", b"redis://localhost"),
    ("namespace", 5),
    ("api_url", ["http://x"]),
    ("api_token", 7),
    ("worker_config", "async_workers=2"),
    ("worker_config", [("async_workers", 2)]),
    ("local_workers", "yes"),
    ("local_workers", 1),
    ("lease_seconds", "30"),
    ("heartbeat_seconds", True),
    ("retention_seconds", -1),
    ("failed_retention_seconds", float("nan")),
    ("max_value_bytes", 1.5),
    ("max_value_bytes", 0),
    ("max_value_bytes", True),
    ("drain_timeout", "soon"),
    ("connect_timeout", float("inf")),
    ("blocked_loop_seconds", -0.5),
])
@pytest.mark.parametrize("cls", [Blazing, blazing.SyncBlazing])
def test_every_option_is_type_checked(cls, option, value):
    with pytest.raises(blazing.ConfigurationError) as info:
        cls(**{option: value})
    message = str(info.value)
    assert f"{option}=" in message and repr(value) in message, message


@pytest.mark.parametrize("secret", [12345, ["s3cret"], ""])
def test_a_bad_secret_is_a_configuration_error_that_does_not_repeat_it(secret):
    with pytest.raises(blazing.ConfigurationError, match="secret=") as info:
        Blazing(secret=secret)
    if secret:
        assert str(secret) not in str(info.value).replace("secret=", "")


def test_a_batch_the_core_refuses_fails_each_call_in_it(app, caplog):
    """The core refuses a whole batch (a command it does not know slipped in, as a bug
    would put it there): each call waiting in the batch fails with the core's reason,
    naming its run and step, one log line names the batch's commands, and the app goes
    on serving."""

    @app.step
    async def child(x: int) -> int:
        return x + 1

    @app.workflow
    async def parent() -> int:
        # Sent from the loop thread, it waits for the next batch with the child's submit.
        app._runtime.send([99, "not a command"])
        return await child(1)

    handle = app.parent()
    with pytest.raises(NativeError) as info, caplog.at_level("ERROR", "blazing.runtime"):
        handle.result_sync(timeout=30)
    msg = str(info.value)
    assert f"submit of run {handle.unit_id} step 0.1 (child) was refused with its batch" in msg
    assert "unknown command code 99" in msg and info.value.code == "invalid"
    refused = [r.getMessage() for r in caplog.records if "refused a batch" in r.getMessage()]
    assert len(refused) == 1 and "command 99" in refused[0], refused
    assert f"run {handle.unit_id} step 0.1 (child)" in refused[0]
    assert app.run_sync("child", 5) == 6


def test_get_run_and_requeue_of_an_unknown_id(app):
    @app.workflow
    async def one() -> int:
        return 1

    assert app.run_sync("one") == 1
    for unknown in ("no-such-run", uuid.uuid4().hex, ""):
        with pytest.raises(RunNotFound) as info:
            app.get_run(unknown)
        assert repr(unknown) in str(info.value)
        assert isinstance(info.value, LookupError)
        with pytest.raises(RunNotFound, match=repr(unknown)):
            app.requeue(unknown)


@pytest.mark.parametrize("bad", [12345, None, b"abc", ["id"]])
def test_a_run_id_that_is_not_a_str_is_a_type_error(app, bad):
    with pytest.raises(TypeError, match="run id is a str") as info:
        app.get_run(bad)
    assert repr(bad) in str(info.value)
    with pytest.raises(TypeError, match="run id is a str"):
        app.requeue(bad)


def test_a_handle_whose_run_is_gone_raises_run_not_found(app):
    # An embedded store lives as long as its app runs: after a restart the
    # handle's run no longer exists anywhere.
    @app.workflow
    async def one() -> int:
        return 1

    handle = app.one()
    assert handle.result_sync(5) == 1
    assert handle.status_sync() == "succeeded"
    app.stop_sync()
    assert app.run_sync("one") == 1  # restarts the app on a fresh store
    with pytest.raises(RunNotFound, match=handle.unit_id):
        handle.status_sync()
    with pytest.raises(RunNotFound, match=handle.unit_id):
        handle.cancel_sync()

    async def main():
        with pytest.raises(RunNotFound, match=handle.unit_id):
            await handle.status()
        with pytest.raises(RunNotFound, match=handle.unit_id):
            await handle.cancel()

    asyncio.run(main())
    with pytest.raises(RunNotFound, match=handle.unit_id):
        app.get_run(handle.unit_id)
    assert handle.result_sync(0) == 1  # the outcome it already had stays readable
