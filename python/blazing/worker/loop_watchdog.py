"""A watchdog for the runtime's event loop: names the step that blocks it.

An ``async def`` step that calls ``time.sleep``, a blocking client or a long
computation without awaiting stops every other workflow, async step and
result hand-off in the process, silently. A daemon thread asks the loop to run
a no-op callback (``call_soon_threadsafe``) every ``threshold / 2`` seconds and
waits for it on a ``threading.Event``; a loop that has not run it within
``blocked_loop_seconds`` is blocked. The watchdog then logs one warning on
``blazing.worker`` naming the step running on the loop (its name, run id, path
and attempt, found by matching the loop thread's stack against the coroutines
of the deliveries running there) and where it is stuck (file, line and
function of the loop thread's innermost frame, with a short stack), and once
the loop answers again, how long it was blocked.

It costs one cross-thread callback per check and nothing on the hot path:
the stack is only read when the loop is already blocked.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

from blazing.context import Execution
from blazing.worker.executor import run_async

log = logging.getLogger("blazing.worker")

# Checks are at most this frequent, whatever the threshold: a tiny threshold
# must not turn the watchdog into a busy poll of the loop.
MIN_CHECK_INTERVAL = 0.05
# Frames of the blocked code shown in the warning, innermost last.
STACK_LIMIT = 8


@dataclass(frozen=True)
class Culprit:
    """What the loop thread was running when it was found blocked."""

    kind: str  # "step" or "workflow"
    name: str | None  # the step or workflow, if the blocking code runs inside one
    unit: str | None
    path: str | None
    attempt: int | None
    where: str  # "file:line in function" of the innermost frame
    step_where: str | None  # the same for the step's own frame, when not innermost
    stack: str  # the last frames, formatted like a traceback

    def who(self) -> str:
        """The step (name, run id, path, attempt) or "code outside any step"."""
        if self.unit is None:
            return "code outside any step"
        attempt = f", attempt {self.attempt}" if self.attempt is not None else ""
        return f"{self.kind} {self.name or '?'!r} of run {self.unit} (path {self.path}{attempt})"

    def describe(self) -> str:
        """One phrase for the log: who blocked the loop, and where."""
        called = f", called from {self.step_where}" if self.step_where else ""
        return f"{self.who()}, stuck at {self.where}{called}"


class _Probe:
    """One check: a callback the loop runs when it gets to it."""

    __slots__ = ("event", "answered_at")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.answered_at: float | None = None

    def answer(self) -> None:
        # Runs on the loop thread.
        self.answered_at = time.monotonic()
        self.event.set()


class LoopWatchdog:
    """Watches one event loop from a daemon thread; see the module docstring.

    ``running`` maps (unit, path) to the asyncio task of each delivery running
    on the loop (the runtime's own dict) and ``kinds`` names to "step" or
    "workflow"; both are only read when the loop is found blocked.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, loop_thread_id: int,
                 threshold: float, running: Mapping[tuple[str, str], asyncio.Task[Any]],
                 label: str = "",
                 kinds: Callable[[str], str] | None = None) -> None:
        if threshold <= 0:
            raise ValueError("the watchdog's threshold must be positive")
        self.loop = loop
        self.loop_thread_id = loop_thread_id
        self.threshold = threshold
        self.interval = max(threshold / 2, MIN_CHECK_INTERVAL)
        self.label = f" ({label})" if label else ""
        self._running = running
        self._kinds = kinds
        self._stop = threading.Event()
        self._probe: _Probe | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LoopWatchdog:
        """Start the watching thread; returns self."""
        self._thread = threading.Thread(target=self._main, name="blazing-loop-watchdog",
                                        daemon=True)
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        """Whether the watching thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching and join the thread (before the loop itself stops,
        or a loop that no longer runs callbacks would look blocked)."""
        self._stop.set()
        probe = self._probe
        if probe is not None:
            probe.event.set()  # wakes the thread at once; answered_at stays None
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # ------------------------------------------------------------ the thread

    def _main(self) -> None:
        while not self._stop.is_set():
            probe = self._probe = _Probe()
            if self._stop.is_set():
                return  # stop() may have woken the previous probe, not this one
            sent = time.monotonic()
            try:
                self.loop.call_soon_threadsafe(probe.answer)
            except RuntimeError:
                return  # the loop is closed: its runtime stopped
            if not probe.event.wait(self.threshold):
                self._blocked(probe, sent)
            if self._stop.wait(self.interval):
                return

    def _blocked(self, probe: _Probe, sent: float) -> None:
        """The loop has not run the probe within the threshold: report, once,
        then wait for it to answer and report how long it took."""
        culprit = self.culprit()
        if probe.answered_at is not None:
            # It answered while the stack was read: that stack may show the
            # loop after the block, so it names no one.
            culprit = None
        waited = time.monotonic() - sent
        # Times are from the check that went unanswered, so they can fall
        # short of the truth by up to one check interval: "at least".
        if culprit is None:
            log.warning("event loop of the Blazing runtime%s was blocked for at least %.2f s "
                        "(blocked_loop_seconds=%g); it ran again before the code blocking it "
                        "could be named", self.label, waited, self.threshold)
        else:
            log.warning("event loop of the Blazing runtime%s has been blocked for at least "
                        "%.2f s (blocked_loop_seconds=%g) by %s; no other async work runs "
                        "meanwhile: await instead of blocking, or make the step BLOCKING\n%s",
                        self.label, waited, self.threshold, culprit.describe(), culprit.stack)
        probe.event.wait()  # the loop answering, or stop()
        if probe.answered_at is None:
            return  # stopping
        who = f" by {culprit.who()}" if culprit is not None else ""
        log.info("event loop of the Blazing runtime%s ran again after being blocked for "
                 "at least %.2f s%s", self.label, probe.answered_at - sent, who)

    # --------------------------------------------------------- the culprit

    def culprit(self) -> Culprit | None:
        """What the loop thread is running now, or None if it runs no Python code."""
        top = sys._current_frames().get(self.loop_thread_id)
        if top is None:
            return None
        frames: list[FrameType] = []  # innermost first
        f: FrameType | None = top
        while f is not None:
            frames.append(f)
            f = f.f_back
        where = _where(top)
        depth = {id(fr): i for i, fr in enumerate(frames)}
        # The delivery whose coroutine frame is on the loop thread's stack is
        # the one running. Copying the dict is atomic under the GIL.
        for (unit, path), task in list(self._running.items()):
            coro = task.get_coro()
            frame = getattr(coro, "cr_frame", None)
            if frame is None or id(frame) not in depth:
                continue
            # The executor's frame (inside the task's) holds the Execution;
            # the step's own code is the frame it awaits, and what the step
            # called (a library, say) is inside that.
            i = depth[id(frame)]
            while i > 0 and frames[i].f_code is not _RUN_ASYNC:
                i -= 1
            shown = frames[:i] if i > 0 else frames[:1]
            step_where = _where(frames[i - 1]) if i > 1 else None
            ex = _execution_of(frames[i])
            name = ex.name if ex else None
            kind = self._kinds(name) if self._kinds and name else "step"
            return Culprit(kind, name, unit, path, ex.attempt if ex else None,
                           where, step_where, _format(shown))
        return Culprit("step", None, None, None, None, where, None, _format(frames))


# The executor's coroutine, whose frame keeps the running Execution in ``ex``.
_RUN_ASYNC = run_async.__code__


def _execution_of(delivery_frame: FrameType) -> Execution | None:
    # executor.run_async keeps the Execution in its local ``ex``. The frame is
    # suspended inside the blocking call, so reading its locals is a snapshot.
    try:
        ex = delivery_frame.f_locals.get("ex")
    except Exception:  # noqa: BLE001 - a best-effort label, never a failure
        return None
    return ex if isinstance(ex, Execution) else None


def _where(frame: FrameType) -> str:
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


def _format(innermost_first: list[FrameType]) -> str:
    frames = list(reversed(innermost_first[:STACK_LIMIT]))
    summary = traceback.StackSummary.extract((fr, fr.f_lineno) for fr in frames)
    return "Stack (most recent call last):\n" + "".join(summary.format()).rstrip("\n")
