"""The apps users write against: async ``Blazing`` and blocking ``SyncBlazing``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from blazing import app_registry
from blazing.connectors.registry import Connectors
from blazing.definitions import (
    Definition,
    check_service,
    define_step,
    define_workflow,
    make_options,
    make_wrapper,
)
from blazing.errors import UnknownNameError, positional_arguments_error
from blazing.inspector import Inspector, When
from blazing.lookup import looking_up
from blazing.records import OperationRecord, StepStats, Timeline
from blazing.registered import Registered
from blazing.run import RemoteRun
from blazing.runtime import Runtime
from blazing.schedules import DEFAULT_CATCH_UP, Schedule, ScheduleInfo, Schedules
from blazing.settings import resolve
from blazing.triggers import Cron, Period

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)

class BaseApp:
    """What both apps share: the registry of definitions, the runtime that runs them in
    this process, and the read path over its store. Use :class:`Blazing` or
    :class:`SyncBlazing`."""

    def __init__(self, *positional: Any, redis_url: str | None = None,
                 worker_config: dict[str, Any] | None = None,
                 api_url: str | None = None, api_token: str | None = None,
                 secret: str | bytes | None = None, namespace: str | None = None,
                 local_workers: bool | None = None,
                 lease_seconds: float | None = None, heartbeat_seconds: float | None = None,
                 retention_seconds: float | None = None,
                 failed_retention_seconds: float | None = None,
                 max_value_bytes: int | None = None,
                 drain_timeout: float | None = None,
                 connect_timeout: float | None = None,
                 blocked_loop_seconds: float | None = None,
                 history: bool | None = None,
                 max_breadcrumbs: int | None = None,
                 max_lapses: int | None = None,
                 retention_max_runs: int | None = None,
                 janitor_seconds: float | None = None,
                 outage_timeout: float | None = None,
                 tls_ca_file: str | os.PathLike[str] | None = None,
                 tls_cert_file: str | os.PathLike[str] | None = None,
                 tls_key_file: str | os.PathLike[str] | None = None,
                 connectors: Mapping[str, Any] | None = None) -> None:
        if positional:
            raise positional_arguments_error(type(self).__name__, positional)
        self._definitions: dict[str, Definition] = {}
        self._service_classes: dict[str, type] = {}
        self._published = False
        self.settings = resolve(
            redis_url=redis_url, worker_config=worker_config, api_url=api_url,
            api_token=api_token, secret=secret,
            namespace=namespace, local_workers=local_workers, lease_seconds=lease_seconds,
            heartbeat_seconds=heartbeat_seconds, retention_seconds=retention_seconds,
            failed_retention_seconds=failed_retention_seconds, max_value_bytes=max_value_bytes,
            drain_timeout=drain_timeout, connect_timeout=connect_timeout,
            blocked_loop_seconds=blocked_loop_seconds, history=history,
            max_breadcrumbs=max_breadcrumbs, max_lapses=max_lapses,
            retention_max_runs=retention_max_runs, janitor_seconds=janitor_seconds,
            outage_timeout=outage_timeout,
            tls_ca_file=tls_ca_file, tls_cert_file=tls_cert_file, tls_key_file=tls_key_file)
        self.api_token = api_token
        self.worker_config = self.settings.worker_config
        self.drain_timeout = self.settings.drain_timeout
        # Connectors are made here, in every process that imports the app, from
        # settings in this process (its code, its environment): nothing of them
        # travels through the store.
        self._connectors = Connectors(connectors)
        self._runtime = Runtime(self._definitions, self._service_classes, self.settings,
                                self._connectors)
        self._schedules = Schedules(self._definitions)
        self._runtime.schedules = self._schedules
        # An app made again (a re-run notebook cell) replaces the one of its name.
        app_registry.claim(app_registry.name_for(self.settings, app_registry.caller_module()),
                           self._runtime)

    # ---------------------------------------------------------- decorators

    @overload
    def step(self, fn: F) -> F: ...
    @overload
    def step(self, fn: None = None, *, step_type: str | None = None, sandboxed: bool = False,
             retries: int = 0, retry_backoff: float | None = None,
             retry_backoff_max: float | None = None, timeout: float | None = None,
             priority: int = 0, queue: str | None = None) -> Callable[[F], F]: ...

    def step(self, fn: Any = None, *, step_type: str | None = None, sandboxed: bool = False,
             retries: int = 0, retry_backoff: float | None = None,
             retry_backoff_max: float | None = None, timeout: float | None = None,
             priority: int = 0, queue: str | None = None) -> Any:
        """Register a step: ``@app.step`` or ``@app.step(step_type=..., retries=...)``."""
        options = make_options(retries, retry_backoff, retry_backoff_max, timeout, priority, queue)
        from blazing.definitions import parse_step_type
        parse_step_type(step_type)  # bad spellings fail here, even before a function is given

        def register(f: F) -> F:
            return self._register(define_step(f, step_type, sandboxed, options))  # type: ignore[return-value]

        return register(fn) if fn is not None else register

    @overload
    def workflow(self, fn: F) -> F: ...
    @overload
    def workflow(self, fn: None = None, *, version_pins: dict[str, Any] | None = None,
                 retries: int = 0, retry_backoff: float | None = None,
                 retry_backoff_max: float | None = None, timeout: float | None = None,
                 priority: int = 0, queue: str | None = None) -> Callable[[F], F]: ...

    def workflow(self, fn: Any = None, *, version_pins: dict[str, Any] | None = None,
                 retries: int = 0, retry_backoff: float | None = None,
                 retry_backoff_max: float | None = None, timeout: float | None = None,
                 priority: int = 0, queue: str | None = None) -> Any:
        """Register a workflow: ``@app.workflow`` or ``@app.workflow(version_pins={...})``."""
        options = make_options(retries, retry_backoff, retry_backoff_max, timeout, priority, queue)

        def register(f: F) -> F:
            return self._register(define_workflow(f, version_pins, options))  # type: ignore[return-value]

        return register(fn) if fn is not None else register

    def service(self, cls: C) -> C:
        """Register a ``BaseService`` subclass; steps get it as ``services["ClassName"]``."""
        check_service(cls)
        self._service_classes[cls.__name__] = cls
        rt = self._runtime
        if rt.started and rt.loop is not None:
            asyncio.run_coroutine_threadsafe(rt.add_service(cls.__name__, cls), rt.loop).result()
        return cls

    def schedule(self, target: Any, trigger: Cron | Period | None = None, *,
                 name: str | None = None, args: tuple[Any, ...] | list[Any] = (),
                 kwargs: dict[str, Any] | None = None, overlap: bool = False,
                 catch_up: float | None = DEFAULT_CATCH_UP) -> Any:
        """Run a workflow (or step) on a :class:`Cron` or :class:`Period` trigger.

        ``@app.schedule(Cron("0 7 * * mon-fri", tz="Europe/Paris"))`` above
        ``@app.workflow``, or ``app.schedule(fn_or_name, Period(minutes=5), args=...)``
        (returns the :class:`~blazing.schedules.Schedule`). ``name`` defaults to the
        workflow's; ``overlap=False`` skips a tick while the previous run goes on;
        ``catch_up`` (seconds, None: any) bounds the age of the one missed tick run
        after nothing served the app. Every process serving the app ticks; exactly
        one run per tick is made (see docs/api.md, "Schedules").
        """
        options = {"name": name, "args": args, "kwargs": kwargs, "overlap": overlap,
                   "catch_up": catch_up}
        if isinstance(target, (Cron, Period)) and trigger is None:
            def decorate(fn: F) -> F:
                self._schedules.declare(fn, target, **options)
                return fn
            return decorate
        if trigger is None:
            raise TypeError("app.schedule(workflow, trigger): give a Cron(...) or Period(...)")
        return self._schedules.declare(target, trigger, **options)

    def schedules(self) -> list[ScheduleInfo]:
        """Every schedule in the store (declared by any process serving the app): name,
        workflow, spec, tz, next tick, last run and its status, paused, counts."""
        return self._inspector().schedules()

    def pause_schedule(self, name: str) -> ScheduleInfo:
        """Pause a schedule for every process: its ticks pass without runs
        (``ScheduleNotFound`` if no process declared it)."""
        return self._schedules.pause(self._session(), name, True)

    def resume_schedule(self, name: str) -> ScheduleInfo:
        """Resume a paused schedule: its next tick runs (the paused ones do not)."""
        return self._schedules.pause(self._session(), name, False)

    @property
    def declared_schedules(self) -> dict[str, Schedule]:
        """The schedules this process's code declared, by name."""
        return self._schedules.declared

    def _session(self) -> Any:
        self._inspector()  # starts the runtime if needed, as every read does
        return self._runtime.session

    def _register(self, defn: Definition) -> Callable[..., Any]:
        # A later definition of the same name replaces the earlier one, as a
        # re-run notebook cell expects.
        wrapper = make_wrapper(defn)
        defn.wrapper = wrapper
        self._definitions[defn.name] = defn
        return wrapper

    # ------------------------------------------------------------- lookup

    def _definition(self, name_or_fn: str | Callable[..., Any]) -> Definition:
        if callable(name_or_fn) and not isinstance(name_or_fn, str):
            defn = getattr(name_or_fn, "__blazing_definition__", None)
            name = getattr(name_or_fn, "__name__", repr(name_or_fn))
            if defn is not None and self._definitions.get(defn.name) is defn:
                return defn
            found = self._definitions.get(name)
            if found is not None:
                return found
            raise self._runtime.unknown(name)
        if not isinstance(name_or_fn, str):
            raise UnknownNameError(
                f"run() needs a name or a decorated function, not {name_or_fn!r}")
        defn = self._definitions.get(name_or_fn)
        if defn is None:
            raise self._runtime.unknown(name_or_fn)
        return defn

    @property
    def connectors(self) -> Connectors:
        """The app's connectors by name (``app.connectors["db"]``), as services get them."""
        return self._connectors

    @property
    def definitions(self) -> dict[str, Definition]:
        """Registered workflows and steps by name."""
        return dict(self._definitions)

    @property
    def steps(self) -> Mapping[str, Callable[..., Any]]:
        """The registered steps by name, as the decorator returned them (read-only, live)."""
        return Registered(self._definitions, "step")

    @property
    def workflows(self) -> Mapping[str, Callable[..., Any]]:
        """The registered workflows by name, as the decorator returned them (read-only, live)."""
        return Registered(self._definitions, "workflow")

    @property
    def services(self) -> Mapping[str, type]:
        """The registered service classes by name, as steps look them up (read-only, live)."""
        return Registered(self._service_classes, "service")

    # The names code ported from the original reads.
    _step_funcs = steps
    _route_funcs = workflows
    _service_registry = services

    def _ensure_started(self) -> Runtime:
        # Embedded mode needs no setup: the first call starts local workers.
        if not self._runtime.started:
            self._runtime.start()
        return self._runtime

    def _inspector(self) -> Inspector:
        # The operator reads go through the store's read path, not the runtime.
        return self._ensure_started().require_inspector()

    def _submit(self, defn: Definition, args: tuple[Any, ...], kwargs: dict[str, Any]) -> RemoteRun:
        return self._ensure_started().submit_root(defn, args, kwargs)

    def lanes(self) -> dict[str, dict[str, float]]:
        """Per lane, now: queue depth, oldest age, operations running, and this
        process's slots (capacity, in flight)."""
        return self._inspector().lanes()

    def stats(self, since: When = "1h") -> dict[str, dict[str, StepStats]]:
        """Per workflow and step (``["steps"]``) and per lane (``["lanes"]``): attempts
        that succeeded, failed, were retried or cancelled, the error rate and p50/p95/p99
        durations since a time (a datetime, seconds ago, or "15m", "2h", "1d"), counted by
        every process on the store."""
        return self._inspector().stats(since)

    def runs(self, status: str | None = None, workflow: str | None = None, since: When = None,
             limit: int = 50) -> list[OperationRecord]:
        """Recent runs, newest first: their root operations, optionally only of one
        status or one workflow (or step) name, started since a time."""
        return self._inspector().runs(status=status, workflow=workflow, since=since,
                                      limit=limit)

    def history(self, unit_id: str) -> list[OperationRecord]:
        """Every operation of a run, in call order: name, status, attempts, worker,
        times, error (``RunNotFound`` for an unknown run)."""
        return self._inspector().history(unit_id)

    def breadcrumbs(self, unit_id: str) -> Timeline:
        """A run's timeline: each operation queued, started and ended, the engine's
        events (retries, lapses, timeouts, replays) and the code's ``log_breadcrumb``."""
        return self._inspector().breadcrumbs(unit_id)

    def optimizer_decisions(self) -> list[dict[str, Any]]:
        """The latest decisions (at most 256, oldest first) of the optimizer that
        moves this process's async slots and blocking threads between lanes in
        embedded mode (``worker_config['auto_optimize']``). Each is a dict: time
        (Unix s), action, from, to, count, reason, detail, before and after
        (``{'async': n, 'blocking': n}`` workers), confirmed, and the ``async``
        and ``blocking`` lanes as scored (depth, urgency, ...). With Redis the
        foremen decide: their latest decisions from ``{namespace}:decisions``, each
        a dict of strings that names its ``foreman`` (empty when none runs)."""
        return self._inspector().decisions()

    def failed_runs(self, limit: int = 50, offset: int = 0) -> list[OperationRecord]:
        """The dead-letter list: failed runs, most recent first."""
        return self._inspector().failed_runs(limit, offset)

    def get_run(self, unit_id: str) -> RemoteRun:
        """A :class:`RemoteRun` handle on an existing run, e.g. one requeued or
        submitted by another process.

        Raises :class:`~blazing.errors.RunNotFound` if no run has that id and
        ``TypeError`` if the id is not a str.
        """
        name = self._inspector().record(unit_id).name
        with looking_up(unit_id):
            return self._runtime.watch_run(unit_id, name)

    def requeue(self, unit_id: str) -> None:
        """Put a failed or cancelled run back to work; its succeeded steps are replayed.

        Raises :class:`~blazing.errors.RunNotFound` if no run has that id and
        ``TypeError`` if the id is not a str.
        """
        self._inspector().requeue(unit_id)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        defs = self.__dict__.get("_definitions")
        if defs is None or name not in defs:
            known = ", ".join(sorted(defs or {})) or "none"
            raise UnknownNameError(
                f"{type(self).__name__} has no attribute, workflow or step named {name!r} "
                f"(registered: {known})")
        return self._caller(defs[name])

    def _caller(self, defn: Definition) -> Callable[..., Any]:
        raise NotImplementedError


class Blazing(BaseApp):
    """The async app (FastAPI, services, asyncio code).

    ``Blazing()`` with no arguments runs everything in this process on the
    embedded store. ``app.<name>(...)`` submits a run and returns a
    :class:`RemoteRun` at once; ``await`` it for the same handle.
    """

    def _caller(self, defn: Definition) -> Callable[..., RemoteRun]:
        def call(*args: Any, **kwargs: Any) -> RemoteRun:
            return self._submit(defn, args, kwargs)

        call.__name__ = defn.name
        call.__doc__ = defn.fn.__doc__
        return call

    async def run(self, name: str | Callable[..., Any], *args: Any, **kwargs: Any) -> RemoteRun:
        """Submit a run of a workflow or step by name (or by the decorated function)."""
        defn = self._definition(name)
        await self._start_off_loop()
        return self._submit(defn, args, kwargs)

    def run_sync(self, name: str | Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Submit a run and block until its result (works inside Jupyter too)."""
        defn = self._definition(name)
        return self._submit(defn, args, kwargs).result_sync()

    async def publish(self) -> None:
        """Register workflows, steps and services with the store; idempotent."""
        self._published = True

    def publish_sync(self) -> None:
        """Blocking :meth:`publish`."""
        self._published = True

    async def _start_off_loop(self) -> None:
        if not self._runtime.started:
            # Creating services may take a while: keep the caller's loop free.
            await asyncio.get_running_loop().run_in_executor(None, self._runtime.start)

    async def start(self) -> None:
        """Start this process's workers (embedded: event loop thread and worker threads)."""
        await self._start_off_loop()

    async def stop(self) -> None:
        """Let running work finish (up to the drain timeout), then stop the workers."""
        await asyncio.get_running_loop().run_in_executor(
            None, self._runtime.stop, self.drain_timeout)

    def stop_sync(self) -> None:
        """Blocking :meth:`stop`."""
        self._runtime.stop(self.drain_timeout)

    async def __aenter__(self) -> Blazing:
        await self.publish()
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class SyncBlazing(BaseApp):
    """The blocking app, for scripts, notebooks and Django/Flask views.

    ``app.<name>(...)`` and ``app.run(name, ...)`` block and return the result.
    Work runs on the runtime's own threads, so this is safe even where an
    event loop is already running in the calling thread (a Jupyter cell).
    """

    def _caller(self, defn: Definition) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._submit(defn, args, kwargs).result_sync()

        call.__name__ = defn.name
        call.__doc__ = defn.fn.__doc__
        return call

    def run(self, name: str | Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a workflow or step by name (or decorated function); return its result."""
        return self._submit(self._definition(name), args, kwargs).result_sync()

    def submit(self, name: str | Callable[..., Any], *args: Any, **kwargs: Any) -> RemoteRun:
        """Submit a run without waiting; returns its :class:`RemoteRun` handle."""
        return self._submit(self._definition(name), args, kwargs)

    def publish(self) -> None:
        """Register workflows, steps and services with the store; idempotent."""
        self._published = True

    def start(self) -> None:
        """Start this process's workers."""
        self._ensure_started()

    def stop(self) -> None:
        """Let running work finish (up to the drain timeout), then stop the workers."""
        self._runtime.stop(self.drain_timeout)

    def __enter__(self) -> SyncBlazing:
        self.publish()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
