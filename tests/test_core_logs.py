"""The Go core's records reach Python's ``logging`` under ``blazing.core``, naming the
run and step they concern, in-process against a real redis-server: a run whose
records Redis lost, an outage and its end, and go-redis's own lines."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest

from blazing import SyncBlazing
from blazing.errors import RunLost
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.timeout(120)


class Records(logging.Handler):
    """Keeps every record of the logger it is attached to; a test waits on them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.cond:
            self.records.append(record)
            self.cond.notify_all()

    def wait_for(self, text: str, timeout: float = 30) -> logging.LogRecord:
        """The first record whose message contains ``text`` (bounded wait)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for r in self.records:
                    if text in r.getMessage():
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no record with {text!r} in "
                                         f"{[r.getMessage() for r in self.records]}")
                self.cond.wait(left)


@pytest.fixture
def core_log():
    handler = Records()
    logger = logging.getLogger("blazing.core")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


def test_core_records_name_their_run_and_reach_logging(redis_server, core_log):  # noqa: ARG001 - skips without redis-server
    with RedisServer() as redis:  # its own: the test empties it and stops it
        app = SyncBlazing(redis_url=redis.url, namespace="logs" + uuid.uuid4().hex[:8],
                          secret="logs-secret", outage_timeout=60)
        started, release = threading.Event(), threading.Event()

        @app.step
        def hold() -> str:
            started.set()
            assert release.wait(60), "the test never released the step"
            return "done"

        try:
            handle = app.submit(hold)
            assert started.wait(30)
            redis.cli("flushall")  # Redis loses the run while its step runs
            release.set()
            with pytest.raises(RunLost):
                handle.result_sync(timeout=60)
            lost = core_log.wait_for(handle.unit_id)
            assert lost.levelno >= logging.WARNING
            assert lost.blazing_run == handle.unit_id  # type: ignore[attr-defined]
            assert lost.blazing_step  # type: ignore[attr-defined]

            # An outage: the engine says so once, go-redis's own dial failures come
            # through the same logger, and the end of it is said too.
            redis.stop()
            later = app.submit(hold)
            core_log.wait_for("unreachable")
            dial = core_log.wait_for("redis: ")
            assert dial.levelno == logging.WARNING and dial.name == "blazing.core"
            redis.start()
            assert later.result_sync(timeout=60) == "done"
            core_log.wait_for("answers again")
        finally:
            release.set()
            app.stop()
