"""``RemoteRun``: the client's handle on one run of a workflow or step.

Like arq's ``Job``, the handle holds what it needs to reach the run (a
:class:`RunControl`) and the slot its outcome arrives in, never the worker.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator
from typing import Any, Protocol

from blazing import codec
from blazing.errors import BlazingError, RunCancelled
from blazing.frames import (
    CANCELLED,
    ERR_MESSAGE,
    ERR_PAYLOAD,
    ERR_TRACEBACK,
    ERR_TYPE,
    LOCAL_ERROR,
    STATUS_NAMES,
    SUCCEEDED,
)


class RunControl(Protocol):
    """What a handle needs to reach its run: cancel it, read its status, and know
    when waiting would block the thread that must deliver its result."""

    def cancel(self, unit: str, path: str, reason: str) -> int:
        """Cancel the run (path "") or one call; how many operations were cancelled."""
        ...

    def status(self, unit: str) -> str:
        """The run's status name (``RunNotFound`` for an unknown run)."""
        ...

    def on_runtime_thread(self) -> bool:
        """Whether the calling thread is the one whose loop delivers results."""
        ...


def outcome_to_value(status: int, result: Any, err: Any) -> Any:
    """Turn a finished operation's (status, result, error) into its value or raise."""
    if status == SUCCEEDED:
        return codec.decode(result) if result is not None else None
    if status == LOCAL_ERROR:
        raise result
    if status == CANCELLED:
        raise RunCancelled(err[ERR_MESSAGE] if err else "cancelled")
    if err is None:
        raise BlazingError(f"operation ended with status {STATUS_NAMES.get(status, status)}")
    raise codec.decode_exception(
        {"type": err[ERR_TYPE], "message": err[ERR_MESSAGE], "traceback": err[ERR_TRACEBACK],
         "payload": err[ERR_PAYLOAD]})


class ResultSlot:
    """Holds one run's outcome; any number of threads and event loops may wait on it."""

    __slots__ = ("_lock", "_done", "_outcome", "_event", "_waiters", "_value", "_decoded")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = False
        self._outcome: tuple[int, Any, Any] | None = None
        self._event = threading.Event()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._decoded = False
        self._value: Any = None

    def set(self, status: int, result: Any, err: Any) -> None:
        """Record the outcome (first one wins) and wake every waiter. Any thread."""
        with self._lock:
            if self._done:
                return
            self._done = True
            self._outcome = (status, result, err)
            waiters, self._waiters = self._waiters, []
        self._event.set()
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_wake, fut)
            except RuntimeError:
                pass  # that loop is closed: nobody is left to wake

    @property
    def done(self) -> bool:
        """Whether the outcome is known."""
        return self._done

    async def wait(self) -> None:
        """Wait for the outcome without blocking the running loop."""
        if self._done:
            return
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._lock:
            if self._done:
                return
            self._waiters.append((loop, fut))
        await fut

    def wait_sync(self, timeout: float | None = None) -> bool:
        """Block this thread until the outcome is known."""
        return self._event.wait(timeout)

    def value(self) -> Any:
        """The result, or raise the failure. Decoded once."""
        assert self._outcome is not None
        if not self._decoded:
            try:
                self._value = (True, outcome_to_value(*self._outcome))
            except BaseException as exc:  # noqa: BLE001 - stored and re-raised
                self._value = (False, exc)
            self._decoded = True
        ok, v = self._value
        if ok:
            return v
        raise v


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class RemoteRun:
    """Handle on one run. Creating it submits the run, exactly once.

    Await it to get the handle back once submitted; ``await h.result()`` (or
    ``wait_result()``) for the result; every coroutine method has a blocking
    ``*_sync`` twin for code without an event loop.
    """

    __slots__ = ("_control", "unit_id", "name", "_slot")

    def __init__(self, control: RunControl, unit_id: str, name: str, slot: ResultSlot) -> None:
        self._control = control
        self.unit_id = unit_id
        self.name = name
        self._slot = slot

    def __repr__(self) -> str:
        state = "finished" if self._slot.done else "in flight"
        return f"<RemoteRun {self.name} {self.unit_id} {state}>"

    def __await__(self) -> Generator[Any, None, RemoteRun]:
        # Submission happened when the handle was made; awaiting only hands
        # the handle back, so `h = await app.x(...)` and `h = app.x(...)` agree.
        if False:  # pragma: no cover - makes this a generator
            yield
        return self

    async def result(self) -> Any:
        """The run's result, or its exception re-raised with the original type."""
        await self._slot.wait()
        return self._slot.value()

    async def wait_result(self) -> Any:
        """Same as :meth:`result`."""
        return await self.result()

    async def wait(self) -> None:
        """Wait until the run has finished, whatever the outcome."""
        await self._slot.wait()

    async def cancel(self) -> bool:
        """Cancel the run and all its pending and running operations."""
        return self.cancel_sync()

    async def status(self) -> str:
        """One of pending, running, succeeded, failed, cancelled."""
        return self.status_sync()

    def _check_thread(self, what: str) -> None:
        if self._control.on_runtime_thread():
            raise BlazingError(
                f"{what}() would block the Blazing runtime's own event loop (run {self.unit_id}); "
                "inside a workflow or step, await the call instead"
            )

    def result_sync(self, timeout: float | None = None) -> Any:
        """Blocking :meth:`result`; ``timeout`` seconds raises ``TimeoutError``."""
        self._check_thread("result_sync")
        if not self._slot.wait_sync(timeout):
            raise TimeoutError(f"run {self.name} {self.unit_id} not finished after {timeout} s")
        return self._slot.value()

    def wait_result_sync(self, timeout: float | None = None) -> Any:
        """Blocking :meth:`wait_result`."""
        return self.result_sync(timeout)

    def wait_sync(self, timeout: float | None = None) -> None:
        """Blocking :meth:`wait`."""
        self._check_thread("wait_sync")
        if not self._slot.wait_sync(timeout):
            raise TimeoutError(f"run {self.name} {self.unit_id} not finished after {timeout} s")

    def cancel_sync(self) -> bool:
        """Blocking :meth:`cancel`; False if the run had already finished.

        Raises :class:`~blazing.errors.RunNotFound` if the store no longer has the run.
        """
        return self._control.cancel(self.unit_id, "", f"run {self.unit_id} cancelled by client") > 0

    def status_sync(self) -> str:
        """Blocking :meth:`status`.

        Raises :class:`~blazing.errors.RunNotFound` if the store no longer has the run
        (its retention passed, or the embedded store it lived in was stopped).
        """
        return self._control.status(self.unit_id)
