"""The app the crash tests run in real worker processes.

Every step execution is journaled (start and end, with unit, path, attempt and
pid) by appending one short line to BLAZING_TEST_JOURNAL, so a test can count
executions exactly and tell which were interrupted by a kill.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from blazing import Blazing, log_breadcrumb
from blazing.context import current
from tests.support.coordinator import checkpoint


def journal(kind: str) -> None:
    """Append one line; O_APPEND keeps concurrent writers' lines whole."""
    path = os.environ.get("BLAZING_TEST_JOURNAL")
    ex = current.get()
    if not path or ex is None:
        return
    line = f"{kind} {ex.unit} {ex.path} {ex.name} {ex.attempt} {os.getpid()}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


class DurableError(Exception):
    """A user exception that both workers and clients can import."""


def make_app(**options: object) -> Blazing:
    """The app with all its steps and workflows (workers and test clients share it)."""
    app = Blazing(**options)  # Redis from BLAZING_REDIS_URL unless given

    @app.step
    def add(x: int, y: int) -> int:
        """A blocking step that can be stopped at a checkpoint; BLAZING_TEST_STEP_MS of
        simulated blocking work."""
        journal("start")
        if os.environ.get("BLAZING_TEST_GATE") == f"add:{y}":
            checkpoint(f"add:{y}")
        work_ms = float(os.environ.get("BLAZING_TEST_STEP_MS", "0"))
        if work_ms:
            time.sleep(work_ms / 1000)  # the workload itself, not synchronization
        journal("end")
        return x + y


    @app.workflow
    async def five_steps(x: int) -> int:
        """Five chained blocking steps: x + 1 + 2 + 3 + 4 + 5."""
        for y in range(1, 6):
            x = await add(x, y)
        return x


    @app.step
    async def inc(x: int) -> int:
        """An async step for load tests; BLAZING_TEST_STEP_MS of simulated I/O."""
        journal("start")
        work_ms = float(os.environ.get("BLAZING_TEST_STEP_MS", "0"))
        if work_ms:
            await asyncio.sleep(work_ms / 1000)  # the workload itself, not synchronization
        journal("end")
        return x + 1


    @app.workflow
    async def three_incs(x: int) -> int:
        """Three chained async steps."""
        journal("start")
        result = await inc(await inc(await inc(x)))
        journal("end")
        return result


    @app.step
    async def noop(x: int) -> int:
        """Does nothing (benchmarks)."""
        return x


    @app.workflow
    async def three_noops(x: int) -> int:
        """Three chained no-op steps (benchmarks)."""
        return await noop(await noop(await noop(x)))

    @app.step
    async def fail_importable(msg: str) -> None:
        """Raises an exception type the client can import."""
        raise DurableError(msg)

    @app.step
    async def fail_unimportable(msg: str) -> None:
        """Raises an exception type that exists only inside this call."""
        class Vanishing(Exception):
            pass

        raise Vanishing(msg)

    @app.step
    def burn(ms: int) -> int:
        """CPU-bound work: a busy loop of ``ms`` milliseconds (the load itself)."""
        end = time.perf_counter() + ms / 1000
        n = 0
        while time.perf_counter() < end:
            n += 1
        return n

    @app.step
    async def wait_io(ms: int) -> int:
        """I/O-bound work: ``ms`` milliseconds of waiting (the load itself)."""
        await asyncio.sleep(ms / 1000)
        return ms

    @app.step
    async def hog() -> str:
        """On its first attempt, blocks its worker's event loop for good (the
        failure under test: a worker alive but stuck); later attempts return."""
        ex = current.get()
        if ex is not None and ex.attempt == 1:
            time.sleep(3600)
        return "unstuck"

    @app.step
    async def stall_loop(seconds: float) -> str:
        """Blocks its worker's event loop for ``seconds`` (the fault under test:
        an async step calling a blocking function), then returns."""
        time.sleep(seconds)
        return "unblocked"

    @app.step
    def whose() -> int:
        """A blocking step that can be stopped at checkpoint "whose"; returns the pid
        of the process that ran it, so a test can tell whose result was kept."""
        journal("start")
        if os.environ.get("BLAZING_TEST_GATE") == "whose":
            checkpoint("whose")
        journal("end")
        return os.getpid()

    @app.step(retries=1)
    def flaky_once(x: int) -> int:
        """Fails on its first attempt, succeeds on the next; notes each on the timeline."""
        ex = current.get()
        attempt = ex.attempt if ex is not None else 1
        log_breadcrumb("flaky attempt", {"attempt": attempt})
        if attempt == 1:
            raise DurableError("the first attempt fails")
        return x * 2

    @app.workflow
    async def traced(x: int) -> int:
        """A step that retries once, then a gated add (add:3): for the timeline tests."""
        log_breadcrumb("traced starts", {"x": x})
        return await add(await flaky_once(x), 3)

    @app.step
    async def poison() -> None:
        """Kills its worker process on every attempt (a segfault, the OOM killer)."""
        os.kill(os.getpid(), signal.SIGKILL)

    @app.step(timeout=0.3)
    async def too_slow() -> None:
        """Outlives its timeout (the sleep is the slow work under test)."""
        await asyncio.sleep(30)

    return app


app = make_app()
