"""The connector base: one pool per event loop and one per thread, opened with
backoff, health-checked, and closed wherever it lives when the process stops.

A connector object is made once in the app module (or by a factory) and lives for
the process. What it connects to a server (a SQLAlchemy engine, an httpx client, an
SSH connection) is bound to the event loop or the thread that opened it, so the
connector keeps one per loop (the runtime's loop serves every async step of the
process) and one per thread (a blocking worker thread uses its own, never another
thread's).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
import os
import random
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar, TypeVar

from blazing.connectors.throttle import Throttle
from blazing.errors import ConnectorConfigError, ConnectorError, ConnectorUnavailable

log = logging.getLogger("blazing.connectors")

T = TypeVar("T")

#: How long closing one pool that lives on another event loop may take at shutdown.
CLOSE_TIMEOUT = 10.0


def redact_url(url: str) -> str:
    """A URL with its password hidden, for messages and logs."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def backoff(base: float, cap: float) -> Iterator[float]:
    """Delays doubling from ``base`` up to ``cap``, with equal jitter (half fixed,
    half random) so that many waiters do not come back at the same instant."""
    delay = base
    while True:
        yield delay / 2 + random.uniform(0, delay / 2)
        delay = min(cap, delay * 2)


def require(module: str, extra: str, connector: str) -> ModuleType:
    """Import a connector's library, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConnectorConfigError(
            f"connector {connector!r} needs the {module.split('.')[0]} package, which is not "
            f"installed: pip install 'blazing[{extra}]' ({exc})") from None


def check_host(connector: Connector, host: str | None, port: int | None) -> None:
    """Fail with a message naming the connector when ``host`` does not resolve."""
    if not host or host.startswith("/"):
        return  # a Unix socket (or the library's default): nothing to resolve
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise connector.config_error(f"host {host!r} does not resolve ({exc})") from None


@dataclass
class _LoopSlot:
    """What a connector holds on one event loop."""

    loop: asyncio.AbstractEventLoop
    resource: Any = None
    broken: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _number(connector: str, name: str, value: Any, *, positive: bool = False) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value < 0 or (positive and value == 0)):
        kind = "positive" if positive else "non-negative"
        raise ConnectorConfigError(
            f"connector {connector!r}: {name}= must be a {kind} number, not {value!r}")
    return float(value)


class Connector:
    """Base class of connectors: ``connect()``, ``disconnect()``, ``health_check()``,
    and ``async with connector:``.

    Subclasses open and close one resource per event loop (``_open``, ``_close``,
    ``_ping``) and one per thread (``_open_sync``, ``_close_sync``, ``_ping_sync``);
    this class decides when: at first use (or at worker start with ``eager=True``),
    again with backoff when it broke, and never twice at once on one loop.

    Options every connector takes:

    - ``name``: how messages and logs name it (the key in ``Blazing(connectors=...)``).
    - ``eager``: connect when the worker starts, so a bad setting fails the start.
    - ``reconnect_timeout``, ``reconnect_backoff``, ``reconnect_backoff_max``: how long
      and how often to try again while the server cannot be reached (seconds).
    - ``health_check_interval``: seconds between background health checks of an open
      connection on the runtime's loop (0: none).
    - ``throttling``: ``{"limit", "window", "mode": "fixed"|"rolling"}`` or a
      :class:`Throttle`, shared by every step of the process.
    """

    #: Short name of the kind, the default ``name``.
    kind: ClassVar[str] = "connector"
    #: The pip extra that installs this connector's library.
    extra: ClassVar[str] = "connectors"

    def __init__(self, *, name: str | None = None, eager: bool = False,
                 reconnect_timeout: float = 30.0, reconnect_backoff: float = 0.1,
                 reconnect_backoff_max: float = 5.0, health_check_interval: float = 30.0,
                 throttling: Throttle | Mapping[str, Any] | None = None) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise ConnectorConfigError(f"connector name must be a non-empty str, not {name!r}")
        self.name: str = name or self.kind
        self.name_given = name is not None
        if not isinstance(eager, bool):
            raise ConnectorConfigError(f"connector {self.name!r}: eager= must be True or False")
        self.eager = eager
        self.reconnect_timeout = _number(self.name, "reconnect_timeout", reconnect_timeout)
        self.reconnect_backoff = _number(self.name, "reconnect_backoff", reconnect_backoff,
                                         positive=True)
        self.reconnect_backoff_max = _number(self.name, "reconnect_backoff_max",
                                             reconnect_backoff_max, positive=True)
        self.health_check_interval = _number(self.name, "health_check_interval",
                                             health_check_interval)
        try:
            self.throttle = None if throttling is None else Throttle.from_spec(throttling)
        except ValueError as exc:
            raise ConnectorConfigError(f"connector {self.name!r}: {exc}") from None
        self._lock = threading.Lock()
        self._slots: dict[int, _LoopSlot] = {}  # id(loop) -> what this loop holds
        self._threads: dict[int, Any] = {}  # thread ident -> what that thread holds

    # ----------------------------------------------------- subclass hooks

    def target(self) -> str:
        """What it connects to, for messages (never with a password)."""
        return ""

    def validate(self) -> None:
        """Check settings without connecting (library installed, files present, host
        resolves); raise :class:`ConnectorConfigError` naming the connector."""

    async def _open(self) -> Any:
        """Open this loop's resource; it must have reached the server."""
        raise NotImplementedError

    async def _close(self, resource: Any) -> None:
        """Close one loop's resource, on that loop."""

    async def _ping(self, resource: Any) -> None:
        """Raise if the resource no longer reaches the server."""

    def _broken(self, resource: Any) -> bool:
        """Cheap check at every use: the resource is known dead (a dropped link)."""
        return False

    def _open_sync(self) -> Any:
        """Open the calling thread's resource; it must have reached the server."""
        raise NotImplementedError

    def _close_sync(self, resource: Any) -> None:
        """Close one thread's resource (from that thread, or from any once it is idle)."""

    def _ping_sync(self, resource: Any) -> None:
        """Raise if the thread's resource no longer reaches the server."""

    def _broken_sync(self, resource: Any) -> bool:
        """Cheap check at every use of a thread's resource."""
        return False

    def _retryable(self, exc: BaseException) -> bool:
        """Whether a failure to connect may pass (the server is down or restarting)."""
        return isinstance(exc, (OSError, TimeoutError, asyncio.TimeoutError))

    # ------------------------------------------------------------ naming

    def describe(self) -> str:
        """``connector 'db' (SQLConnector postgresql+asyncpg://u:***@host/db)``."""
        target = self.target()
        return f"connector {self.name!r} ({type(self).__name__}{' ' + target if target else ''})"

    def config_error(self, message: str) -> ConnectorConfigError:
        """A settings error naming this connector."""
        return ConnectorConfigError(f"{self.describe()}: {message}")

    def __repr__(self) -> str:
        return f"<{self.describe()}>"

    # ------------------------------------------------- async: this loop

    def _slot(self, loop: asyncio.AbstractEventLoop) -> _LoopSlot:
        with self._lock:
            slot = self._slots.get(id(loop))
            if slot is None or slot.loop is not loop:  # a new loop reusing an old id
                slot = self._slots[id(loop)] = _LoopSlot(loop)
            return slot

    async def _resource(self) -> Any:
        """This loop's resource, opened (with backoff) if it is not open or broke."""
        loop = asyncio.get_running_loop()
        slot = self._slots.get(id(loop))
        if (slot is not None and slot.loop is loop and slot.resource is not None
                and not slot.broken and not self._broken(slot.resource)):
            return slot.resource
        slot = self._slot(loop)
        async with slot.lock:  # one opener per loop; the others wait for its result
            if slot.resource is not None:
                if not slot.broken and not self._broken(slot.resource):
                    return slot.resource
                old, slot.resource = slot.resource, None
                log.warning("%s: connection lost; reconnecting", self.describe())
                await self._close_quietly(old)
            slot.resource = await self.retrying(self._open, "connect")
            slot.broken = False
            return slot.resource

    def _mark_broken(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        slot = self._slots.get(id(loop))
        if slot is not None and slot.loop is loop:
            slot.broken = True

    async def retrying(self, fn: Callable[[], Awaitable[T]], what: str) -> T:
        """Await ``fn()``, again with backoff while it fails in a way that may pass
        (:meth:`_retryable`), for up to ``reconnect_timeout`` seconds; then raise
        :class:`ConnectorUnavailable`. Other failures are raised as they are."""
        deadline = time.monotonic() + self.reconnect_timeout
        delays = backoff(self.reconnect_backoff, self.reconnect_backoff_max)
        attempts = 0
        while True:
            attempts += 1
            try:
                return await fn()
            except Exception as exc:
                delay = self._retry_delay(exc, what, attempts, deadline, delays)
            await asyncio.sleep(delay)  # the backoff itself

    def retrying_sync(self, fn: Callable[[], T], what: str) -> T:
        """:meth:`retrying` for blocking threads."""
        deadline = time.monotonic() + self.reconnect_timeout
        delays = backoff(self.reconnect_backoff, self.reconnect_backoff_max)
        attempts = 0
        while True:
            attempts += 1
            try:
                return fn()
            except Exception as exc:
                delay = self._retry_delay(exc, what, attempts, deadline, delays)
            time.sleep(delay)  # the backoff itself

    def _retry_delay(self, exc: Exception, what: str, attempts: int, deadline: float,
                     delays: Iterator[float]) -> float:
        """How long to back off before trying ``what`` again after ``exc``; re-raises
        ``exc`` when a retry cannot help, and raises :class:`ConnectorUnavailable` when
        the next try would come after ``deadline``. Called from an ``except`` block."""
        if isinstance(exc, ConnectorError) or not self._retryable(exc):
            raise exc
        delay = next(delays)
        if time.monotonic() + delay > deadline:
            raise self._unavailable(what, attempts, exc) from exc
        if attempts == 1:
            log.warning("%s: cannot %s (%s); trying again for up to %.0f s",
                        self.describe(), what, _brief(exc), self.reconnect_timeout)
        return delay

    def _unavailable(self, what: str, attempts: int, exc: BaseException) -> ConnectorUnavailable:
        return ConnectorUnavailable(
            f"{self.describe()}: cannot {what} after {attempts} attempts in "
            f"{self.reconnect_timeout:.0f} s: {_brief(exc)}")

    async def _throttled(self) -> None:
        if self.throttle is not None:
            await self.throttle.acquire()

    def _throttled_sync(self) -> None:
        if self.throttle is not None:
            self.throttle.acquire_sync()

    async def _close_quietly(self, resource: Any) -> None:
        try:
            await self._close(resource)
        except Exception as exc:  # noqa: BLE001 - closing what broke may fail too
            log.debug("%s: closing: %s", self.describe(), _brief(exc))

    def _close_sync_quietly(self, resource: Any) -> None:
        try:
            self._close_sync(resource)
        except Exception as exc:  # noqa: BLE001 - closing what broke may fail too
            log.debug("%s: closing: %s", self.describe(), _brief(exc))

    # ------------------------------------------------ sync: this thread

    def _resource_sync(self) -> Any:
        """The calling thread's resource, opened (with backoff) if needed."""
        tid = threading.get_ident()
        res = self._threads.get(tid)
        if res is not None:
            if not self._broken_sync(res):
                return res
            log.warning("%s: connection lost; reconnecting", self.describe())
            with self._lock:
                self._threads.pop(tid, None)
            self._close_sync_quietly(res)
        res = self.retrying_sync(self._open_sync, "connect")
        with self._lock:
            self._threads[tid] = res
        return res

    # ------------------------------------------------------- public API

    async def connect(self) -> None:
        """Open this event loop's connection (pool) now, rather than at first use."""
        await self._resource()

    def connect_sync(self) -> None:
        """Open the calling thread's connection (pool) now."""
        self._resource_sync()

    def connected(self) -> bool:
        """Whether this loop (or, outside a loop, this thread) holds an open connection."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return threading.get_ident() in self._threads
        slot = self._slots.get(id(loop))
        return slot is not None and slot.loop is loop and slot.resource is not None

    async def health_check(self, timeout: float = 10.0) -> bool:
        """Whether this loop's connection answers (connecting first if there is none).

        A failed check is logged and the connection is dropped, so the next use
        reconnects (with backoff).
        """
        try:
            loop = asyncio.get_running_loop()
            slot = self._slot(loop)
            if slot.resource is None or slot.broken or self._broken(slot.resource):
                await asyncio.wait_for(self._resource(), timeout)
            else:
                await asyncio.wait_for(self._ping(slot.resource), timeout)
            return True
        except Exception as exc:  # noqa: BLE001 - the answer is False, with the reason logged
            log.warning("%s: health check failed: %s", self.describe(), _brief(exc))
            self._mark_broken()
            return False

    def health_check_sync(self) -> bool:
        """:meth:`health_check` for the calling thread's connection."""
        try:
            tid = threading.get_ident()
            res = self._threads.get(tid)
            if res is None or self._broken_sync(res):
                self._resource_sync()
            else:
                self._ping_sync(res)
            return True
        except Exception as exc:  # noqa: BLE001 - the answer is False, with the reason logged
            log.warning("%s: health check failed: %s", self.describe(), _brief(exc))
            with self._lock:
                res = self._threads.pop(threading.get_ident(), None)
            if res is not None:
                self._close_sync_quietly(res)
            return False

    async def disconnect(self) -> None:
        """Close every connection this connector holds in the process: this loop's,
        other loops' (on their own loop), and every thread's."""
        with self._lock:
            slots, self._slots = list(self._slots.values()), {}
            threads, self._threads = list(self._threads.values()), {}
        here = asyncio.get_running_loop()
        closed = 0
        for slot in slots:
            res = slot.resource
            if res is None:
                continue
            closed += 1
            if slot.loop is here:
                await self._close_quietly(res)
            elif slot.loop.is_closed():
                pass  # its loop is gone: the sockets go with the objects
            elif not slot.loop.is_running():
                # An idle loop (a thread's, between its uses) can be run from a
                # helper thread for as long as closing takes.
                await asyncio.to_thread(slot.loop.run_until_complete, self._close_quietly(res))
            else:
                fut = asyncio.run_coroutine_threadsafe(self._close_quietly(res), slot.loop)
                try:
                    await asyncio.wait_for(asyncio.wrap_future(fut), CLOSE_TIMEOUT)
                except (asyncio.TimeoutError, RuntimeError) as exc:
                    log.warning("%s: a pool on another event loop did not close: %s",
                                self.describe(), _brief(exc))
        if threads:
            # Closing may block (a sync engine, a thread's own loop): not on this loop.
            await asyncio.to_thread(lambda: [self._close_sync_quietly(r) for r in threads])
            closed += len(threads)
        if closed:
            log.info("%s: closed %d connection pool(s)", self.describe(), closed)

    def release_thread(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Close what the calling thread holds: its own resource, and what it opened
        on ``loop`` (the thread's event loop, for async steps it ran). Blocking worker
        threads call this as they exit."""
        with self._lock:
            res = self._threads.pop(threading.get_ident(), None)
            slot = None
            if loop is not None:
                slot = self._slots.get(id(loop))
                if slot is not None and slot.loop is loop:
                    del self._slots[id(loop)]
        if res is not None:
            self._close_sync_quietly(res)
        if (slot is not None and slot.resource is not None and loop is not None
                and not loop.is_closed() and not loop.is_running()):
            loop.run_until_complete(self._close_quietly(slot.resource))

    async def __aenter__(self: T) -> T:
        await self.connect()  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def expand_path(path: str | os.PathLike[str]) -> str:
    """A path with ``~`` expanded."""
    return os.path.expanduser(os.fspath(path))
