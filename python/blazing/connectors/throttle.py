"""A rate limit shared by every step of a process: at most ``limit`` operations per
``window`` seconds, counted in fixed windows or over a rolling one."""

from __future__ import annotations

import asyncio
import collections
import math
import threading
import time
from collections.abc import Mapping
from typing import Any

MODES = ("fixed", "rolling")


class Throttle:
    """At most ``limit`` acquisitions per ``window`` seconds in this process.

    ``mode="rolling"``: no interval of ``window`` seconds holds more than ``limit``.
    ``mode="fixed"``: windows start at the first acquisition and follow each other
    back to back; each holds at most ``limit`` (two adjacent windows may together
    hold up to twice that, the usual price of fixed windows).

    One instance is shared by the async tasks and the blocking threads of the
    process (it takes a thread lock for a few instructions): :meth:`acquire` waits
    on the event loop, :meth:`acquire_sync` sleeps the calling thread.
    """

    def __init__(self, limit: int, window: float, mode: str = "rolling") -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"throttling limit must be a whole number of at least 1, "
                             f"not {limit!r}")
        if (isinstance(window, bool) or not isinstance(window, (int, float))
                or not math.isfinite(window) or window <= 0):
            raise ValueError(f"throttling window must be a positive number of seconds, "
                             f"not {window!r}")
        if mode not in MODES:
            raise ValueError(f"throttling mode must be 'fixed' or 'rolling', not {mode!r}")
        self.limit = limit
        self.window = float(window)
        self.mode = mode
        self._lock = threading.Lock()
        self._stamps: collections.deque[float] = collections.deque()  # rolling
        self._origin: float | None = None  # fixed: start of the first window
        self._index = -1  # fixed: the current window's number
        self._count = 0  # fixed: acquisitions in it

    @classmethod
    def from_spec(cls, spec: Throttle | Mapping[str, Any]) -> Throttle:
        """A throttle from ``{"limit", "window", "mode"}`` (mode defaults to rolling)."""
        if isinstance(spec, Throttle):
            return spec
        if not isinstance(spec, Mapping):
            raise ValueError(f"throttling must be a dict with limit, window and mode, "
                             f"not {spec!r}")
        unknown = set(spec) - {"limit", "window", "mode"}
        if unknown:
            raise ValueError(f"unknown throttling keys {sorted(unknown)}; "
                             "known: limit, window, mode")
        if "limit" not in spec or "window" not in spec:
            raise ValueError("throttling needs both 'limit' and 'window'")
        return cls(spec["limit"], spec["window"], spec.get("mode", "rolling"))

    def _reserve(self, now: float) -> float:
        """Take a slot now (0.0) or say how long to wait before asking again."""
        with self._lock:
            if self.mode == "rolling":
                stamps = self._stamps
                while stamps and stamps[0] <= now - self.window:
                    stamps.popleft()
                if len(stamps) < self.limit:
                    stamps.append(now)
                    return 0.0
                return stamps[0] + self.window - now
            if self._origin is None:
                self._origin = now
            index = int((now - self._origin) // self.window)
            if index != self._index:
                self._index, self._count = index, 0
            if self._count < self.limit:
                self._count += 1
                return 0.0
            return self._origin + (index + 1) * self.window - now

    async def acquire(self) -> None:
        """Wait on the running event loop until a slot is free, and take it."""
        while (wait := self._reserve(time.monotonic())) > 0:
            await asyncio.sleep(wait)  # the limit itself: the next slot opens then

    def acquire_sync(self) -> None:
        """Block the calling thread until a slot is free, and take it."""
        while (wait := self._reserve(time.monotonic())) > 0:
            time.sleep(wait)  # the limit itself: the next slot opens then

    def __repr__(self) -> str:
        return f"Throttle(limit={self.limit}, window={self.window}, mode={self.mode!r})"
