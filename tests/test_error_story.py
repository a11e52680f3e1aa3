"""Errors tell their whole story: a step's own ``raise`` line survives every hop (workflow,
client, dead letter, CLI), store trouble is a ``ConnectionError`` or a ``TimeoutError``,
``connect_timeout`` holds for a Redis that never answers, workers log what failed and what
is retried, and misuses say what to do instead."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path

import pytest

from blazing import Blazing, RemoteError, SyncBlazing
from blazing.errors import (
    BlazingError,
    NativeError,
    RemoteTraceback,
    StoreTimeout,
    StoreUnavailable,
)
from tests.apps.storied import StoryError
from tests.apps.storied import make_app as make_storied
from tests.apps.storied import register as register_story
from tests.support.workers import ROOT, WorkerFleet

pytestmark = pytest.mark.timeout(120)
SECRET = "error-story-secret"
RAISE_LINE = 'raise StoryError(f"order {order} is not in stock")  # the step\'s own raise'


@pytest.fixture
def ns() -> str:
    return "story" + uuid.uuid4().hex[:10]


def _story(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


class WorkerRecords(logging.Handler):
    """The ``blazing.worker`` records, with a bounded wait for the ones still to come
    (a timeout is logged as the engine tells the worker, which may be after the caller
    has its result)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.records.append(record)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[logging.LogRecord]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.records) >= count, timeout)
            return list(self.records)


@pytest.fixture
def worker_records():
    handler = WorkerRecords()
    logger = logging.getLogger("blazing.worker")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


# ------------------------------------------------------------------ tracebacks


def test_step_raise_line_survives_two_hops_embedded(make_app):
    app = register_story(make_app(SyncBlazing))
    with pytest.raises(StoryError, match="order 7 is not in stock") as info:
        app.checkout("7")
    exc = info.value
    # The cause is the remote traceback, which nests each hop's: the step's raise line,
    # then middle's await, then the workflow's.
    assert isinstance(exc.__cause__, RemoteTraceback)
    story = _story(exc)
    assert RAISE_LINE in story
    assert "in innermost" in story and "in middle" in story and "in checkout" in story
    assert story.index("in innermost") < story.index("in middle") < story.index("in checkout")
    # The dead-letter record of the run (its root, the workflow) tells the same.
    [dead] = app.failed_runs()
    assert dead.name == "checkout" and dead.error_type == "tests.apps.storied.StoryError"
    assert RAISE_LINE in (dead.error_traceback or "")


def test_caught_and_wrapped_exception_keeps_the_step_as_its_cause(make_app):
    app = make_app(SyncBlazing)

    @app.step
    def parse(text: str) -> int:
        return int(text)  # the step's own failing line

    @app.workflow
    async def total(text: str) -> int:
        try:
            return await parse(text)
        except ValueError as exc:
            raise LookupError(f"no total for {text!r}") from exc

    with pytest.raises(LookupError) as info:
        app.total("x")
    story = _story(info.value)
    assert "return int(text)  # the step's own failing line" in story
    assert "invalid literal for int()" in story


def test_a_remote_error_of_an_unknown_type_keeps_its_frames(make_app):
    app = make_app(SyncBlazing)

    @app.step
    async def local_only() -> None:
        class OnlyHere(Exception):
            pass

        raise OnlyHere("gone with its closure")  # not importable anywhere

    @app.workflow
    async def outer() -> None:
        await local_only()

    with pytest.raises(RemoteError) as info:
        app.outer()
    assert "OnlyHere" in info.value.type_name
    assert 'raise OnlyHere("gone with its closure")' in _story(info.value)


def test_step_raise_line_through_a_worker_process_the_dead_letters_and_the_cli(
        redis_server, ns, tmp_path: Path):
    env = {"BLAZING_REDIS_URL": redis_server.url, "BLAZING_NAMESPACE": ns,
           "BLAZING_SECRET": SECRET}
    fleet = WorkerFleet(env, log=tmp_path / "workers.log", app="tests.apps.storied:app")
    client = make_storied(redis_url=redis_server.url, namespace=ns, local_workers=False,
                          secret=SECRET)
    try:
        fleet.start("async")  # the steps and the workflow are all async
        handle = client.checkout("42")
        with pytest.raises(StoryError, match="order 42 is not in stock") as info:
            handle.result_sync(timeout=60)
        assert RAISE_LINE in _story(info.value)
        [dead] = client.failed_runs()
        assert dead.unit_id == handle.unit_id and RAISE_LINE in (dead.error_traceback or "")
        cli = subprocess.run([sys.executable, "-m", "blazing.cli", "failed", "-o", "json"],
                             env={**os.environ, **env}, capture_output=True, text=True,
                             timeout=60, cwd=ROOT)
        assert cli.returncode == 0, cli.stderr
        [row] = json.loads(cli.stdout)
        assert row["unit_id"] == handle.unit_id and RAISE_LINE in row["error_traceback"]
        # The worker logged each failed operation (the two steps and the workflow) at
        # WARNING, naming the run, the step and the exception.
        fleet.close()
        log = (tmp_path / "workers.log").read_text()
        failures = [line for line in log.splitlines()
                    if "WARNING" in line and handle.unit_id in line]
        assert len(failures) == 3, log
        assert any("step innermost" in f and "step 0.1.1)" in f for f in failures), failures
        assert all("tests.apps.storied.StoryError: order 42 is not in stock" in f
                   for f in failures), failures
    finally:
        client.stop_sync()
        fleet.close()


# ------------------------------------------------------------------ worker logs


def test_worker_logs_retries_at_info_and_failures_at_warning(make_app, worker_records):
    app = make_app(SyncBlazing)
    attempts = {"n": 0}

    @app.step(retries=2)
    def flaky(x: int) -> int:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ConnectionResetError(f"attempt {attempts['n']} lost its peer")
        return x

    @app.step
    def doomed() -> None:
        raise KeyError("nobody")

    run = app.submit(flaky, 5)
    assert run.result_sync(timeout=30) == 5
    retried = worker_records.wait_for(2)
    assert [r.levelno for r in retried] == [logging.INFO, logging.INFO]
    for n, record in enumerate(retried, start=1):
        message = record.getMessage()
        assert f"step flaky (run {run.unit_id}, step 0)" in message
        assert f"attempt {n} of 3 failed with ConnectionResetError: attempt {n} lost" in message
        assert message.endswith("retrying")
        assert (record.blazing_run, record.blazing_step) == (run.unit_id, "0")
    run = app.submit(doomed)
    with pytest.raises(KeyError):
        run.result_sync(timeout=30)
    [failed] = worker_records.wait_for(3)[2:]
    assert failed.levelno == logging.WARNING
    assert f"step doomed (run {run.unit_id}, step 0) failed (attempt 1 of 1) with KeyError: " \
           "'nobody'" in failed.getMessage()
    assert failed.exc_info is not None and failed.exc_info[0] is KeyError


def test_worker_logs_timeouts_and_their_retry(make_app, worker_records):
    app = make_app(SyncBlazing)

    @app.step(retries=1, timeout=0.2)
    async def stuck() -> None:
        import asyncio

        await asyncio.Event().wait()  # never set: only the timeout ends it

    run = app.submit(stuck)
    with pytest.raises(TimeoutError, match="timed out after 200ms"):
        run.result_sync(timeout=30)
    records = worker_records.wait_for(2)
    assert [r.levelno for r in records] == [logging.INFO, logging.WARNING], \
        [r.getMessage() for r in records]
    assert "attempt 1 of 2 failed with TimeoutError" in records[0].getMessage()
    assert "failed (attempt 2 of 2) with TimeoutError" in records[1].getMessage()
    assert all(f"step stuck (run {run.unit_id}, step 0)" in r.getMessage() for r in records)


# ------------------------------------------------------------- store trouble


@pytest.fixture
def silent_redis():
    """A TCP listener that accepts connections (the kernel completes them) and never
    answers a byte: a Redis that hangs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    sock.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_redis_is_a_connection_error(make_app, capfd):
    # go-redis retries a refused dial for ~0.4 s; a deadline before that would be a timeout.
    app = make_app(SyncBlazing, redis_url=f"redis://127.0.0.1:{_closed_port()}/0",
                   connect_timeout=3)
    with pytest.raises(ConnectionError) as info:
        app.start()
    assert isinstance(info.value, StoreUnavailable) and isinstance(info.value, BlazingError)
    assert not isinstance(info.value, (NativeError, StoreTimeout))
    assert "Redis does not answer" in str(info.value) and "connection refused" in str(info.value)
    # go-redis's own "failed to dial" lines say nothing the error does not: none on stderr.
    assert "failed to dial" not in capfd.readouterr().err


@pytest.mark.parametrize("how", ["option", "env"])
def test_connect_timeout_holds_for_a_redis_that_never_answers(make_app, silent_redis,
                                                              monkeypatch, how):
    if how == "env":
        monkeypatch.setenv("BLAZING_CONNECT_TIMEOUT", "1")
        app = make_app(SyncBlazing, redis_url=silent_redis)
    else:
        app = make_app(SyncBlazing, redis_url=silent_redis, connect_timeout=1)
    began = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        app.start()
    took = time.monotonic() - began
    assert isinstance(info.value, StoreTimeout) and isinstance(info.value, ConnectionError)
    assert re.search(r"Redis does not answer \(waited up to (1s|9\d0ms)\)", str(info.value))
    # Without the fix go-redis's own read timeout and pool retries held it >= 5 s; the
    # bound is far from both, so a slow machine does not fail it.
    assert took < 4.0, f"start() took {took:.1f} s with connect_timeout=1"


def test_cli_without_a_redis_url_asks_for_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLAZING_")}
    out = subprocess.run([sys.executable, "-m", "blazing.cli", "failed"], env=env,
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 1
    assert "pass --redis-url (or set BLAZING_REDIS_URL)" in out.stderr
    assert "local_workers" not in out.stderr


# ------------------------------------------------------------------ misuse


@pytest.mark.parametrize("cls", [Blazing, SyncBlazing])
def test_a_positional_url_says_to_use_redis_url(cls):
    with pytest.raises(TypeError) as info:
        cls("redis://user:hunter2@localhost:6379/0")
    message = str(info.value)
    assert f"{cls.__name__}(redis_url='redis://user:***@localhost:6379/0')" in message
    assert "hunter2" not in message and "_AppCore" not in message and "BaseApp" not in message
    with pytest.raises(TypeError, match=r"keyword arguments only \(got 2 positional"):
        cls(4, 2)
