"""The event-loop watchdog: a step that blocks the runtime's loop is named, once.

The stimulus is a step that blocks its loop for three thresholds (``time.sleep``
inside the step); the tests synchronize on results and on the log records
themselves, never on sleeps of their own.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
import uuid
from pathlib import Path

import pytest

from blazing import Blazing, ConfigurationError
from tests.apps.durable import make_app as make_durable_app
from tests.support.workers import WorkerFleet

pytestmark = pytest.mark.timeout(120)

THRESHOLD = 0.2
BLOCK = 3 * THRESHOLD
LOGGER = "blazing.worker"


class Records(logging.Handler):
    """Collects the records of one logger and lets a test wait for one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._cond:
            self.records.append(record)
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 10.0) -> logging.LogRecord:
        """The first record whose message contains ``text`` (bounded wait)."""
        def found() -> logging.LogRecord | None:
            return next((r for r in self.records if text in r.getMessage()), None)

        with self._cond:
            assert self._cond.wait_for(found, timeout), (
                f"no record with {text!r} after {timeout} s: {self.messages()}")
            return found()  # type: ignore[return-value]

    def warnings(self) -> list[logging.LogRecord]:
        """Records at WARNING and above."""
        return [r for r in self.records if r.levelno >= logging.WARNING]

    def messages(self) -> list[str]:
        """Every message so far."""
        return [r.getMessage() for r in self.records]


@pytest.fixture
def records():
    handler = Records()
    logger = logging.getLogger(LOGGER)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_a_step_that_blocks_the_loop_is_named_once(make_app, records):
    app = make_app(blocked_loop_seconds=THRESHOLD)
    where: list[int] = []
    ended: list[float] = []

    @app.step
    async def stall(x: int) -> int:
        where.append(inspect.currentframe().f_lineno + 1)
        time.sleep(BLOCK)  # the stimulus: blocks the runtime's event loop
        ended.append(time.time())
        return x + 1

    @app.workflow
    async def flow(x: int) -> int:
        return await stall(x)

    handle = app.flow(1)
    assert handle.result_sync(timeout=30) == 2
    done = records.wait_for("ran again after being blocked")

    warned = records.warnings()
    assert len(warned) == 1, records.messages()
    message = warned[0].getMessage()
    assert warned[0].name == LOGGER
    assert "step 'stall'" in message
    assert f"run {handle.unit_id}" in message
    assert "path 0.1" in message
    assert f"{__file__}:{where[0]} in stall" in message
    assert "time.sleep(BLOCK)" in message  # the stack shows the line itself
    assert warned[0].created < ended[0], "warned while the loop was still blocked"
    # The all-clear names the step and a duration of about the block.
    assert done.levelno == logging.INFO and "step 'stall'" in done.getMessage()
    blocked_for = float(done.getMessage().split("at least ")[1].split(" s")[0])
    assert THRESHOLD <= blocked_for <= BLOCK + 1


def test_a_workflow_that_blocks_the_loop_is_named_as_a_workflow(make_app, records):
    app = make_app(blocked_loop_seconds=THRESHOLD)

    def helper() -> None:
        time.sleep(BLOCK)  # the stimulus, one call below the workflow's own code

    @app.workflow
    async def heavy() -> str:
        helper()
        return "done"

    handle = app.heavy()
    assert handle.result_sync(timeout=30) == "done"
    records.wait_for("ran again after being blocked")
    [warned] = records.warnings()
    message = warned.getMessage()
    assert f"workflow 'heavy' of run {handle.unit_id} (path 0, attempt 1)" in message
    assert f"{__file__}:" in message and "in helper, called from " in message
    assert message.split("called from ")[1].split(";")[0].endswith(" in heavy")


def test_a_step_that_awaits_is_not_reported(make_app, records):
    app = make_app(blocked_loop_seconds=THRESHOLD)

    @app.step
    async def patient(x: int) -> int:
        await asyncio.sleep(BLOCK)  # the same time, but the loop stays free
        return x

    @app.workflow
    async def flow(x: int) -> int:
        return await patient(x)

    assert app.run_sync("flow", 7) == 7
    watchdog = app._runtime._watchdog
    assert watchdog is not None and watchdog.alive  # it was watching all along
    assert records.warnings() == []


def test_zero_turns_the_watchdog_off(make_app, records):
    app = make_app(blocked_loop_seconds=0)

    @app.step
    async def stall() -> str:
        time.sleep(BLOCK)  # would be reported with the watchdog on
        return "ok"

    assert app.run_sync("stall") == "ok"
    assert app._runtime._watchdog is None
    assert records.records == []


def test_the_thread_starts_with_the_runtime_and_is_gone_after_stop(make_app):
    app = make_app(blocked_loop_seconds=THRESHOLD)

    @app.workflow
    async def one() -> int:
        return 1

    assert app.run_sync("one") == 1
    first = app._runtime._watchdog._thread
    assert first.is_alive() and first.daemon
    app.stop_sync()
    assert not first.is_alive()
    assert app._runtime._watchdog is None
    # A restarted app watches again, with a new thread.
    assert app.run_sync("one") == 1
    second = app._runtime._watchdog._thread
    assert second is not first and second.is_alive()
    app.stop_sync()
    assert not second.is_alive()


def test_default_env_twin_and_bad_values(monkeypatch):
    monkeypatch.delenv("BLAZING_BLOCKED_LOOP_SECONDS", raising=False)
    assert Blazing().settings.blocked_loop_seconds == 1.0
    assert Blazing(blocked_loop_seconds=2).settings.blocked_loop_seconds == 2
    monkeypatch.setenv("BLAZING_BLOCKED_LOOP_SECONDS", "0.25")
    assert Blazing().settings.blocked_loop_seconds == 0.25
    assert Blazing(blocked_loop_seconds=0).settings.blocked_loop_seconds == 0
    monkeypatch.setenv("BLAZING_BLOCKED_LOOP_SECONDS", "soon")
    with pytest.raises(ConfigurationError, match="BLAZING_BLOCKED_LOOP_SECONDS='soon'"):
        Blazing()
    monkeypatch.delenv("BLAZING_BLOCKED_LOOP_SECONDS")
    for bad in (-1, "1", True, float("nan"), float("inf")):
        with pytest.raises(ConfigurationError, match="blocked_loop_seconds="):
            Blazing(blocked_loop_seconds=bad)


def test_a_worker_process_log_names_the_step(redis_server, tmp_path: Path):
    ns = "lw" + uuid.uuid4().hex[:10]
    secret = "loop-watchdog-secret"
    fleet = WorkerFleet({"BLAZING_REDIS_URL": redis_server.url, "BLAZING_NAMESPACE": ns,
                         "BLAZING_SECRET": secret,
                         "BLAZING_BLOCKED_LOOP_SECONDS": str(THRESHOLD)},
                        log=tmp_path / "workers.log")
    client = make_durable_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                              secret=secret)
    try:
        worker = fleet.start("async")
        handle = client.stall_loop(BLOCK)
        assert handle.result_sync(timeout=60) == "unblocked"
        # Stopping the worker joins its watchdog, so every line it logs is
        # in the file once the process has exited.
        assert worker.terminate() == 0
    finally:
        client.stop_sync()
        fleet.close()
    log = (tmp_path / "workers.log").read_text()
    warned = [line for line in log.splitlines() if " WARNING " in line and "blocked" in line]
    assert len(warned) == 1, log
    fn = client.definitions["stall_loop"].fn
    lines, first = inspect.getsourcelines(fn)
    sleep_line = first + next(i for i, text in enumerate(lines) if "time.sleep(" in text)
    assert f"step 'stall_loop' of run {handle.unit_id} (path 0, attempt 1)" in warned[0]
    assert f"durable.py:{sleep_line} in stall_loop" in warned[0]
    assert f"blazing.worker[{worker.pid}]" in warned[0]
    assert "ran again after being blocked" in log
