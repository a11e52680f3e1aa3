"""Threads that run blocking-lane work (sync steps and BLOCKING steps)."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("blazing.worker")

_STOP = None

# Runs one delivery on the calling pool thread, given that thread's own event
# loop (None until a BLOCKING async step needs one); returns the loop to reuse.
RunDelivery = Callable[[list[Any], asyncio.AbstractEventLoop | None],
                       asyncio.AbstractEventLoop | None]

# Called by each thread as it exits, with its event loop (if it made one) still
# open: it closes what the thread opened (its connectors' thread-local pools).
OnExit = Callable[[asyncio.AbstractEventLoop | None], None]


class BlockingPool:
    """A pool whose size follows the engine's blocking slots.

    It grows when a running step lends its slot while it waits for a call it
    made (so nested calls cannot deadlock) and shrinks back as threads finish.
    """

    def __init__(self, run: RunDelivery, size: int, on_exit: OnExit | None = None) -> None:
        self._run = run
        self._on_exit = on_exit
        self._q: queue.SimpleQueue[list[Any] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._target = size
        self._threads: set[threading.Thread] = set()
        self._idle = threading.Condition(self._lock)  # notified when the last thread ends
        self._seq = 0
        self._stopped = False
        self._spawn()

    def put(self, ev: list[Any]) -> None:
        """Queue a delivery; a free thread takes it."""
        self._q.put(ev)

    def resize(self, delta: int) -> None:
        """Change the target size; new threads start at once."""
        with self._lock:
            self._target += delta
        self._spawn()

    def _spawn(self) -> None:
        with self._lock:
            while not self._stopped and len(self._threads) < self._target:
                self._seq += 1
                t = threading.Thread(target=self._main, name=f"blazing-blocking-{self._seq}",
                                     daemon=True)
                self._threads.add(t)
                t.start()

    def _main(self) -> None:
        me = threading.current_thread()
        loop: asyncio.AbstractEventLoop | None = None
        try:
            while True:
                ev = self._q.get()
                if ev is _STOP:
                    return
                loop = self._run(ev, loop)
                with self._lock:
                    if len(self._threads) > self._target:
                        return  # the pool shrank: this thread is surplus
        finally:
            try:
                if self._on_exit is not None:
                    self._on_exit(loop)
            except Exception:  # noqa: BLE001 - the thread ends either way
                log.exception("closing a blocking thread's connections failed")
            finally:
                with self._lock:
                    self._threads.discard(me)
                    if not self._threads:
                        self._idle.notify_all()
                if loop is not None:
                    loop.close()

    def stop(self) -> None:
        """Ask every thread to exit once its current work ends."""
        with self._lock:
            self._stopped = True
            n = len(self._threads)
        for _ in range(n):
            self._q.put(_STOP)

    def join(self, timeout: float) -> bool:
        """Wait (up to ``timeout`` s) until every thread has exited; whether they did."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._threads, timeout)
