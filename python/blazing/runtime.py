"""The per-app runtime: one engine in the Go core, one event loop thread for
async work, a pool of threads for blocking work, and one thread that waits in
Go for events.

Commands issued on the runtime's loop thread are batched: they are queued and
sent in one call per loop iteration, and the reply carries every event ready
by then (work to run, results to hand out), so a busy in-process app runs
without thread hand-offs. Other threads (clients, blocking workers) call the
core directly. Results are handed to waiters through tokens: small integers
registered before the submission that can produce them is sent.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

from blazing import codec, frames
from blazing._native import Session
from blazing.connectors.registry import Connectors
from blazing.context import Execution
from blazing.definitions import Definition
from blazing.errors import (
    BlazingError,
    ConfigurationError,
    EngineClosedError,
    NativeError,
    RunCancelled,
    UnknownNameError,
    from_native,
)
from blazing.frames import (
    EV_CANCEL,
    EV_DELIVER,
    EV_KIND,
    EV_LOG,
    EV_MIX,
    EV_RESULT,
    LANE_BLOCKING,
    LOCAL_ERROR,
)
from blazing.inspector import Inspector
from blazing.run import RemoteRun, ResultSlot, outcome_to_value
from blazing.services import Services, create_services
from blazing.settings import Settings
from blazing.worker import executor
from blazing.worker.attempt_log import attempt_timed_out
from blazing.worker.blocking_pool import BlockingPool
from blazing.worker.loop_watchdog import LoopWatchdog

log = logging.getLogger("blazing.runtime")


def _open_session(settings: Settings, config: dict[str, Any]) -> Session:
    """Open the core's session; a Redis URL or TLS file it cannot use is a ConfigurationError.

    Python has checked everything else in the config, so a refusal of it ("invalid") at
    open names the URL or the TLS option and file that the core could not use. A Redis
    that cannot be reached or refuses this process raises StoreUnavailable (from the core).
    """
    try:
        return Session(config)
    except NativeError as exc:
        if settings.redis_url and exc.code == "invalid":
            raise ConfigurationError(str(exc)) from exc
        raise

core_log = logging.getLogger("blazing.core")


def _py_level(slog_level: int) -> int:
    """Python's logging level for a Go slog level (-4 debug, 0 info, 4 warn, 8 error)."""
    if slog_level >= 8:
        return logging.ERROR
    if slog_level >= 4:
        return logging.WARNING
    if slog_level >= 0:
        return logging.INFO
    return logging.DEBUG

ResultCallback = Callable[[int, Any, Any], None]

#: Longest stop() waits for the blocking threads to exit (closing their connections);
#: work still running past the drain is not waited for longer.
THREAD_EXIT_TIMEOUT = 5.0
#: Longest stop() waits for the connectors to close the rest.
CONNECTOR_CLOSE_TIMEOUT = 10.0
#: Commands a refused batch's log line names (a batch can hold thousands).
MAX_LOGGED_COMMANDS = 5


class Runtime:
    """Runs one app's work in this process; see the module docstring."""

    def __init__(self, registry: dict[str, Definition],
                 service_classes: dict[str, Any], settings: Settings,
                 connectors: Connectors | None = None) -> None:
        self.registry = registry
        self._service_classes = service_classes
        self.settings = settings
        # Made in the app module of every process that imports it; they connect
        # only in processes that run work (see _loop_main).
        self.connectors = connectors if connectors is not None else Connectors()
        self._health: asyncio.Task[None] | None = None
        self.max_value_bytes = settings.max_value_bytes
        self.services = Services()
        self.session: Session | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._loop_tid = -1
        self._loop_thread: threading.Thread | None = None
        self._events_thread: threading.Thread | None = None
        self._watchdog: LoopWatchdog | None = None
        self.inspector: Inspector | None = None  # the read path, over the session
        self._notify_fd = -1  # eventfd the core announces events on (Redis mode)
        self._pending: list[list[Any]] = []
        self._flush_scheduled = False
        self._tokens: dict[int, ResultCallback] = {}
        self._token_seq = itertools.count(1)
        # (unit, path) -> asyncio.Task of async work running here
        self.running: dict[tuple[str, str], asyncio.Task[None]] = {}
        # Blocking-lane operations on pool threads now: (unit, path) -> thread id
        # (what a worker is running, for its beat and `blazing workers`).
        self.running_blocking: dict[tuple[str, str], int] = {}
        # Every operation delivered here and not yet ended: (unit, path) -> (name,
        # attempt), so that one the engine stops at its timeout is logged by name.
        self.attempts: dict[tuple[str, str], tuple[str, int]] = {}
        self.cancelled: set[tuple[str, str]] = set()
        self.pool: BlockingPool | None = None
        self._active = 0
        self._idle = threading.Condition()
        self._state_lock = threading.Lock()
        self.started = False
        self.stopping = False
        # Why this runtime may not start again (a newer app of its name replaced it).
        self.retired: str | None = None
        # The app's schedules (blazing.schedules.Schedules): ticked here while this
        # process serves the app.
        self.schedules: Any = None

    # ----------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the loop thread, services, engine and event thread. Idempotent;
        a stopped runtime starts afresh (services are created again)."""
        with self._state_lock:
            if self.started:
                return
            if self.retired is not None:
                raise EngineClosedError(f"this app cannot start again: {self.retired}")
            if self.stopping:
                raise EngineClosedError("the app is stopping; start it again once stop() returns")
            ready = threading.Event()
            failure: list[BaseException] = []
            self._loop_thread = threading.Thread(
                target=self._loop_main, args=(ready, failure), name="blazing-runtime", daemon=True)
            self._loop_thread.start()
            ready.wait()
            if failure:
                raise failure[0]
            self.started = True
            self._watchdog = self._start_watchdog()  # None when turned off
            if self.schedules is not None:
                self.schedules.bind(self)
                if self.settings.local_workers:
                    self.schedules.start(self)

    def _start_watchdog(self) -> LoopWatchdog | None:
        """Watch the loop for steps that block it, unless turned off
        (``blocked_loop_seconds=0``) or no work runs here."""
        st = self.settings
        if st.blocked_loop_seconds <= 0 or not st.local_workers or self.loop is None:
            return None
        label = f"namespace {st.namespace!r}" if st.redis_url else "embedded"
        registry = self.registry

        def kind(name: str) -> str:
            defn = registry.get(name)
            return defn.kind if defn is not None else "step"

        return LoopWatchdog(self.loop, self._loop_tid, st.blocked_loop_seconds, self.running,
                            label, kind).start()

    def _loop_main(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = _new_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        self._loop_tid = threading.get_ident()
        try:
            st = self.settings
            if st.local_workers:
                # Settings are checked (and eager connectors connected) before any
                # work is taken, so a bad one fails the start, naming its connector.
                loop.run_until_complete(self.connectors.start(async_lane=st.async_slots > 0))
                self._health = loop.create_task(self.connectors.watch())
            self.services = loop.run_until_complete(
                create_services(self._service_classes, self.connectors.instances()))
            self.session = _open_session(st, {
                **st.store_config(),
                # A foreman names its workers' inboxes, so that it can take
                # back their leases at once when one dies (BLAZING_INBOX).
                "inbox": os.environ.get("BLAZING_INBOX") or
                f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}",
                "async": st.async_slots,
                "blocking": st.blocking_threads,
            })
            self.inspector = Inspector(self.session)
            self.pool = BlockingPool(self._run_blocking, st.blocking_threads,
                                     on_exit=self.connectors.release_thread)
            if st.redis_url:
                # Events reach the loop through an eventfd it watches: a thread
                # parked in the core and a hop to the loop would cost two
                # wake-ups per delivery or result (see core/engine/notify.go).
                self._notify_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
                loop.add_reader(self._notify_fd, self._on_notify)
                self.session.set_notify(self._notify_fd)
            else:
                self._events_thread = threading.Thread(
                    target=self._events_main, name="blazing-events", daemon=True)
                self._events_thread.start()
        except BaseException as exc:  # noqa: BLE001 - handed to start()
            failure.append(exc)
            if self._health is not None:
                self._health.cancel()
                self._health = None
            loop.run_until_complete(self.connectors.close())
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            if self._notify_fd >= 0:
                # The session is closed by now, so the core writes to it no more.
                loop.remove_reader(self._notify_fd)
                os.close(self._notify_fd)
                self._notify_fd = -1
            loop.close()

    def _on_notify(self) -> None:
        """The eventfd says events are queued: take them, on the loop thread."""
        try:
            os.eventfd_read(self._notify_fd)
        except BlockingIOError:
            pass  # already reset by an earlier wake-up that took these events
        session = self.session
        if session is None:
            return
        try:
            events = session.wait(0)
        except EngineClosedError:
            return
        if events:
            self.handle_events(events)

    def _events_main(self) -> None:
        session = self.session
        assert session is not None
        while True:
            try:
                events = session.wait(60_000)  # Close wakes it; no idle ticking
            except EngineClosedError:
                return
            except Exception:  # noqa: BLE001 - keep serving; the core logged it
                log.exception("waiting for events failed")
                continue
            if events:
                self.handle_events(events)

    async def add_service(self, name: str, cls: Any) -> None:
        """Create a service registered after start."""
        self.services[name] = await cls.create(self.connectors.instances())

    def stop(self, timeout: float = 30.0, *, pause: bool = False) -> None:
        """Let running work finish (up to ``timeout`` s), then stop everything.

        With ``pause`` (a draining worker process) no new work is taken
        meanwhile, and what is unfinished at the deadline is handed back to
        the store at once. Without it (embedded mode) the app keeps serving
        the calls its running work makes, since no one else would.
        """
        if self.on_runtime_thread():
            raise BlazingError("stop() cannot be called from inside a workflow or step")
        with self._state_lock:
            if not self.started or self.stopping:
                return
            self.stopping = True
        if self.schedules is not None:
            self.schedules.stop()  # no new runs from this process
        if pause:
            self.send_now([frames.pause(True)])
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout)
        loop, session = self.loop, self.session
        assert loop is not None and session is not None
        fut = asyncio.run_coroutine_threadsafe(self._shutdown_loop(), loop)
        fut.result(timeout=10)
        try:
            session.close()
        except NativeError as exc:
            # The core closed, but says what never reached the store (an
            # outage at shutdown): nothing is dropped without a word.
            log.error("stopped with work the store never received: %s", exc)
        if self.pool is not None:
            self.pool.stop()
            # Each thread closes its own connections as it exits; one still
            # running a step past the drain keeps them until the process ends.
            self.pool.join(THREAD_EXIT_TIMEOUT)
        try:
            asyncio.run_coroutine_threadsafe(self._close_connectors(), loop).result(
                timeout=2 * CONNECTOR_CLOSE_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - stopping goes on; the process may exit
            log.error("closing connectors failed: %s", exc)
        if self._watchdog is not None:
            self._watchdog.stop()  # before the loop stops answering its checks
            self._watchdog = None
        loop.call_soon_threadsafe(loop.stop)
        if self._loop_thread is not None:
            self._loop_thread.join(10)
        if self._events_thread is not None:
            self._events_thread.join(10)
            self._events_thread = None
        # Nobody will answer these any more.
        tokens, self._tokens = self._tokens, {}
        for cb in tokens.values():
            cb(LOCAL_ERROR, EngineClosedError("the app stopped before this run finished"), None)
        with self._state_lock:
            self.session = self.loop = self.pool = self.inspector = None
            self._loop_tid = -1
            self._pending = []
            self._flush_scheduled = False
            self.running.clear()
            self.attempts.clear()
            self.cancelled.clear()
            self._active = 0
            self.started = self.stopping = False

    def retire(self, reason: str) -> None:
        """Refuse to start from now on, saying ``reason`` (a running one keeps running
        until stopped)."""
        self.retired = reason

    def drain_and_stop(self, timeout: float) -> None:
        """Stop as a worker process does on SIGTERM (see :meth:`stop`)."""
        self.stop(timeout, pause=True)

    async def _close_connectors(self) -> None:
        if self._health is not None:
            self._health.cancel()
            self._health = None
        await self.connectors.close()

    async def _shutdown_loop(self) -> None:
        self._flush()
        for task in list(self.running.values()):
            task.cancel()

    # ------------------------------------------------------------- helpers

    def on_runtime_thread(self) -> bool:
        """Whether the caller runs on the runtime's event loop thread."""
        return threading.get_ident() == self._loop_tid

    def new_token(self, cb: ResultCallback) -> int:
        """Register a result callback; the token names it in commands."""
        tok = next(self._token_seq)
        self._tokens[tok] = cb
        return tok

    @property
    def active(self) -> int:
        """Operations running in this process now."""
        return self._active

    def activity(self, delta: int) -> None:
        """Count operations running here, so stop() can wait for them."""
        with self._idle:
            self._active += delta
            if self._active == 0:
                self._idle.notify_all()

    # ------------------------------------------------------------ commands

    def send(self, cmd: list[Any]) -> None:
        """Queue a command; on the loop thread it goes with the next batch."""
        if threading.get_ident() == self._loop_tid:
            self._pending.append(cmd)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                assert self.loop is not None
                self.loop.call_soon(self._flush)
        else:
            self.send_now([cmd])

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._pending:
            cmds, self._pending = self._pending, []
            try:
                self.send_now(cmds)
            except Exception as exc:  # noqa: BLE001 - told to each waiter below
                # The core refused the whole batch (it is stopping, or a bug):
                # every caller waiting on a submission in it hears why.
                shown = ", ".join(frames.describe(c) for c in cmds[:MAX_LOGGED_COMMANDS])
                more = len(cmds) - MAX_LOGGED_COMMANDS
                log.error("the core refused a batch of %d commands (%s%s): %s", len(cmds),
                          shown, f", and {more} more" if more > 0 else "", exc)
                code = getattr(exc, "code", "internal")
                for cmd in cmds:  # each is named in the line above: no line of its own
                    self._command_failed(
                        cmd, code, f"{frames.describe(cmd)} was refused with its batch: {exc}",
                        logged=True)

    def send_now(self, cmds: list[list[Any]]) -> list[Any]:
        """Run commands in the core at once; hand out the events it replies with."""
        session = self.session
        if session is None:
            raise EngineClosedError("the app is not started")
        try:
            errors, events = session.batch(cmds)
        except EngineClosedError:
            # Completions and slot changes of work that outlived stop() are
            # moot; a new submission must hear that nobody will run it.
            if self.stopping and all(frames.command_token(c) is None for c in cmds):
                return []
            raise
        for idx, code, message in errors:
            self._command_failed(cmds[idx], code, message)
        if events:
            self.handle_events(events)
        return errors

    def _command_failed(self, cmd: list[Any], code: str, message: str,
                        logged: bool = False) -> None:
        token = frames.command_token(cmd)
        if token is not None:
            cb = self._tokens.pop(token, None)
            if cb is not None:
                cb(LOCAL_ERROR, from_native(message, code), None)
                return
        if not logged:
            log.error("%s failed: %s", frames.describe(cmd), message)

    # -------------------------------------------------------------- events

    def handle_events(self, events: list[Any]) -> None:
        """Act on events from the core; callable from any thread."""
        on_loop = threading.get_ident() == self._loop_tid
        for_loop: list[Any] = []
        for ev in events:
            kind = ev[EV_KIND]
            if kind == EV_RESULT:
                cb = self._tokens.pop(ev[frames.RESULT_TOKEN], None)
                if cb is not None:
                    cb(ev[frames.RESULT_STATUS], ev[frames.RESULT_VALUE], ev[frames.RESULT_ERROR])
            elif kind == EV_DELIVER:
                self.activity(1)
                self.attempts[(ev[frames.DELIVER_UNIT], ev[frames.DELIVER_PATH])] = (
                    ev[frames.DELIVER_NAME], ev[frames.DELIVER_ATTEMPT])
                if ev[frames.DELIVER_LANE] == LANE_BLOCKING:
                    assert self.pool is not None
                    self.pool.put(ev)
                else:
                    for_loop.append(ev)
            elif kind == EV_CANCEL:
                # Here, in the events' order: a retry's delivery may follow in this batch.
                self._log_timeout((ev[frames.CANCEL_UNIT], ev[frames.CANCEL_PATH]),
                                  ev[frames.CANCEL_ERROR])
                for_loop.append(ev)
            elif kind == EV_LOG:
                # A record of the Go core's, naming the run and step it concerns.
                core_log.log(_py_level(ev[frames.LOG_LEVEL]), ev[frames.LOG_MESSAGE],
                             extra={"blazing_run": ev[frames.LOG_UNIT],
                                    "blazing_step": ev[frames.LOG_PATH]})
            elif kind == EV_MIX:
                # The embedded optimizer moved workers between lanes; the
                # engine has changed the slots, the threads follow.
                blocking_delta = ev[frames.MIX_BLOCKING_DELTA]
                log.info("optimizer: now %d async + %d blocking workers",
                         ev[frames.MIX_ASYNC], ev[frames.MIX_BLOCKING])
                if self.pool is not None and blocking_delta:
                    self.pool.resize(blocking_delta)
        if for_loop:
            if on_loop:
                self._loop_events(for_loop)
            else:
                assert self.loop is not None
                try:
                    self.loop.call_soon_threadsafe(self._loop_events, for_loop)
                except RuntimeError:
                    pass  # loop closed during stop: the engine released the work

    def _loop_events(self, events: list[Any]) -> None:
        loop = self.loop
        assert loop is not None
        for ev in events:
            if ev[EV_KIND] == EV_DELIVER:
                key = (ev[frames.DELIVER_UNIT], ev[frames.DELIVER_PATH])
                task = loop.create_task(self._run_async(ev))
                task.add_done_callback(functools.partial(self._task_done, key))
                self.running[key] = task
            else:  # EV_CANCEL
                key = (ev[frames.CANCEL_UNIT], ev[frames.CANCEL_PATH])
                self.cancelled.add(key)
                task = self.running.pop(key, None)
                if task is not None:
                    task.cancel()

    def _log_timeout(self, key: tuple[str, str], err: list[Any] | None) -> None:
        """Log an attempt running here that the engine stopped at its ``timeout=``
        (a cancellation of the run itself is no failure of the worker's)."""
        attempt = self.attempts.pop(key, None)
        if attempt is None or not err or err[frames.ERR_TYPE] != "builtins.TimeoutError":
            return
        name, number = attempt
        defn = self.registry.get(name)
        attempt_timed_out(defn.kind if defn is not None else "operation", name, key[0], key[1],
                          number, defn.options.retries if defn is not None else 0,
                          err[frames.ERR_MESSAGE])

    def _task_done(self, key: tuple[str, str], task: asyncio.Task[None]) -> None:
        if task.cancelled():
            # A retry of the same operation may run here already, under the same key.
            if self.running.get(key) is task:
                del self.running[key]
            self.cancelled.discard(key)
            self.activity(-1)

    async def _run_async(self, ev: list[Any]) -> None:
        """Run an async-lane delivery and report how it ended (a cancelled task
        reports nothing: see _task_done)."""
        outcome = await executor.run_async(self, ev)
        key = (outcome.unit, outcome.path)
        if self.running.get(key) is asyncio.current_task():
            del self.running[key]
        self.complete(outcome)

    def _run_blocking(self, ev: list[Any], loop: asyncio.AbstractEventLoop | None
                      ) -> asyncio.AbstractEventLoop | None:
        """Run a blocking-lane delivery on a pool thread and report how it ended."""
        key = (ev[frames.DELIVER_UNIT], ev[frames.DELIVER_PATH])
        self.running_blocking[key] = threading.get_ident()
        try:
            outcome, loop = executor.run_blocking(self, ev, loop)
        finally:
            self.running_blocking.pop(key, None)
        self.complete(outcome)
        return loop

    def complete(self, outcome: executor.Outcome) -> None:
        """Report the end of an attempt that ran here."""
        key = (outcome.unit, outcome.path)
        self.cancelled.discard(key)
        if self.attempts.get(key, ("", 0))[1] == outcome.attempt:
            del self.attempts[key]  # a late end of an earlier attempt leaves the new one's
        self.send(outcome.command())
        self.activity(-1)

    # ------------------------------------------------------- calling steps

    def submit_cmd(self, unit: str, path: str, parent: str, depth: int, defn: Definition,
                   args: bytes, token: int) -> list[Any]:
        """Build a submit command."""
        o = defn.options
        return frames.submit(unit, path, parent, depth, defn.name, defn.lane, args, token,
                             o.retries, o.backoff_ms, o.backoff_max_ms, o.timeout_ms, o.priority)

    def encode_args(self, defn: Definition, args: tuple[Any, ...], kwargs: dict[str, Any],
                    where: str) -> bytes:
        """Encode call arguments; ``services`` stays in the process."""
        if "services" in kwargs:
            kwargs = {k: v for k, v in kwargs.items() if k != "services"}
        try:
            return codec.encode((args, kwargs), self.max_value_bytes)
        except codec.CodecError as exc:
            context = f"arguments of {defn.kind} {defn.name!r} ({where})"
            raise codec.with_context(exc, context) from exc

    def call_child(self, ex: Execution, defn: Definition, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        """A step call made inside a running operation: a durable child of it."""
        path = ex.next_path()
        payload = self.encode_args(defn, args, kwargs, f"called from {ex.unit}/{ex.path}")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            return self._call_child_blocking(ex, defn, path, payload)
        fut: asyncio.Future[Any] = loop.create_future()
        token = self.new_token(functools.partial(_resolve_future, loop, fut))
        cmds = [self.submit_cmd(ex.unit, path, ex.path, ex.depth + 1, defn, payload, token)]
        lend = self._lend_slot(ex)
        if lend is not None:
            cmds.insert(0, lend)
        fut.add_done_callback(functools.partial(self._child_done, ex, path, token))
        if threading.get_ident() == self._loop_tid:
            for c in cmds:
                self.send(c)
        else:
            self.send_now(cmds)
        return fut

    def breadcrumb(self, unit: str, path: str, at_ms: int, message: str,
                   metadata: bytes | None) -> None:
        """A breadcrumb for an operation's timeline: batched like every other command."""
        self.send(frames.crumb(unit, path, at_ms, message, metadata))

    def _lend_slot(self, ex: Execution) -> list[Any] | None:
        # The caller is about to wait: give its slot to its lane meanwhile,
        # so a chain of calls deeper than the slots still makes progress.
        ex.waiting += 1
        if ex.waiting != 1:
            return None
        if ex.lane == LANE_BLOCKING and self.pool is not None:
            self.pool.resize(1)
        return frames.capacity(ex.lane, 1)

    def _return_slot(self, ex: Execution) -> list[Any] | None:
        ex.waiting -= 1
        if ex.waiting != 0:
            return None
        if ex.lane == LANE_BLOCKING and self.pool is not None:
            self.pool.resize(-1)
        return frames.capacity(ex.lane, -1)

    def _child_done(self, ex: Execution, path: str, token: int, fut: asyncio.Future[Any]) -> None:
        cmds = []
        if not fut.cancelled() and isinstance(fut.exception(), RunCancelled):
            pass  # exception() marks it retrieved: a call cancelled with its caller is no news
        if fut.cancelled():
            # The caller stopped waiting (asyncio.wait_for, task cancelled):
            # stop the call too rather than leave it running for no one.
            self._tokens.pop(token, None)
            cmds.append(frames.cancel(ex.unit, path, f"caller {ex.unit}/{ex.path} stopped waiting"))
        ret = self._return_slot(ex)
        if ret is not None:
            cmds.append(ret)
        for c in cmds:
            self.send(c)

    def _call_child_blocking(self, ex: Execution, defn: Definition, path: str,
                             payload: bytes) -> Any:
        slot = ResultSlot()
        token = self.new_token(slot.set)
        cmds = [self.submit_cmd(ex.unit, path, ex.path, ex.depth + 1, defn, payload, token)]
        lend = self._lend_slot(ex)
        if lend is not None:
            cmds.insert(0, lend)
        try:
            self.send_now(cmds)
            slot.wait_sync()
        finally:
            ret = self._return_slot(ex)
            if ret is not None:
                self.send_now([ret])
        return slot.value()

    # --------------------------------------------------------- client side

    def submit_root(self, defn: Definition, args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> RemoteRun:
        """Submit a new run of ``defn``; the handle resolves when it ends."""
        if self.stopping:
            raise EngineClosedError(
                f"cannot run {defn.name!r}: this app was stopped; create a new app to run again")
        unit = uuid.uuid4().hex
        payload = self.encode_args(defn, args, kwargs, f"run {unit}")
        slot = ResultSlot()
        token = self.new_token(slot.set)
        errors = self.send_now([self.submit_cmd(unit, "0", "", 0, defn, payload, token)])
        if errors:
            raise from_native(f"run {unit} of {defn.name!r} was refused: {errors[0][2]}",
                              errors[0][1])
        return RemoteRun(self, unit, defn.name, slot)

    def watch_run(self, unit: str, name: str) -> RemoteRun:
        """A handle on an existing run (by unit id), resolved when it finishes."""
        slot = ResultSlot()
        token = self.new_token(slot.set)
        errors = self.send_now([frames.watch(unit, "0", token)])
        if errors:
            raise NativeError(f"no run {unit}: {errors[0][2]}", errors[0][1])
        return RemoteRun(self, unit, name, slot)

    def cancel(self, unit: str, path: str, reason: str) -> int:
        """Cancel a unit (path "") or a call and everything under it; 0 if it had
        finished already (``RunNotFound`` for an unknown one)."""
        before = self.require_inspector().status(unit, path or "0")
        errors = self.send_now([frames.cancel(unit, path, reason)])
        if errors:
            raise from_native(errors[0][2], errors[0][1])
        return 0 if before in ("succeeded", "failed", "cancelled") else 1

    def status(self, unit: str) -> str:
        """A run's status name (``RunNotFound`` for an unknown run)."""
        return self.require_inspector().status(unit)

    def require_inspector(self) -> Inspector:
        """The read path over this runtime's session (it must be started)."""
        if self.inspector is None:
            raise EngineClosedError("the app is not started")
        return self.inspector

    def unknown(self, name: str) -> UnknownNameError:
        """The error for a name nobody registered."""
        known = ", ".join(sorted(self.registry)) or "none"
        return UnknownNameError(f"no workflow or step named {name!r} (registered: {known})")


def _resolve_future(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any],
                    status: int, result: Any, err: Any) -> None:
    if asyncio.events._get_running_loop() is loop:
        _set_outcome(fut, status, result, err)
    else:
        try:
            loop.call_soon_threadsafe(_set_outcome, fut, status, result, err)
        except RuntimeError:
            pass  # that loop is gone; nothing waits on it


def _set_outcome(fut: asyncio.Future[Any], status: int, result: Any, err: Any) -> None:
    if fut.done():
        return
    try:
        fut.set_result(outcome_to_value(status, result, err))
    except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
        fut.set_exception(exc)


def _new_loop() -> asyncio.AbstractEventLoop:
    if os.environ.get("BLAZING_UVLOOP", "1") != "0":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


__all__ = ["Runtime"]
