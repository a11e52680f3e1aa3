"""Schedules: a workflow (or step) run on a :class:`~blazing.triggers.Cron` or
:class:`~blazing.triggers.Period` trigger.

Every process that serves the app (a worker, or an embedded app once started) runs
one ticker thread. At each tick every ticker asks the store to fire it; the store
claims the tick and submits its run as one atomic step, under a run id derived
from the schedule and the tick (``report@20300102T070000Z``), so exactly one run
exists per tick however many processes race for it, and any one of them dying
loses nothing while another still serves.

Policies (see docs/semantics.md):

- missed ticks (nothing served the app): when a ticker starts or wakes late, it
  fires only the latest tick due, and only if it is within ``catch_up`` seconds
  (default 3600; ``None``: any age; a tick up to ``ON_TIME`` s late is always on
  time). Older ticks never run; the process that fires next logs how many.
- overlap: with ``overlap=False`` (the default) a tick whose previous run has not
  finished is skipped (claimed without a run, counted, logged); ``overlap=True``
  runs it beside.
- paused: ticks are claimed without a run; resuming runs the next tick, not the
  paused ones.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol

from blazing import codec, frames
from blazing.errors import (
    BlazingError,
    ConfigurationError,
    EngineClosedError,
    NativeError,
    UnknownNameError,
)
from blazing.triggers import Cron, Period, Trigger, ticks_between

if TYPE_CHECKING:
    from blazing.definitions import Definition
    from blazing.inspector import Reader
    from blazing.settings import Settings

log = logging.getLogger("blazing.schedules")

UTC = timezone.utc
#: Default catch-up window (seconds): the latest missed tick runs if no older than this.
DEFAULT_CATCH_UP = 3600.0
#: A tick this many seconds late is on time whatever ``catch_up`` says (a ticker
#: that woke late on a busy machine).
ON_TIME = 10.0
#: How long a ticker waits before trying again after the store failed it.
RETRY_SECONDS = 1.0
#: How often a ticker writes a schedule's record even with no tick due (seconds), so
#: that a schedule ticking less often than its record lasts stays listed.
REGISTER_EVERY = 3600.0
#: The most missed ticks a log line counts.
MISSED_COUNT_MAX = 10_000
# Looking back for the latest due tick: a window at a time, so that a dense cron
# expression is walked over a short span only.
_LOOKBACK = (timedelta(minutes=2), timedelta(hours=1), timedelta(days=1), timedelta(days=32),
             timedelta(days=400))
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
_STATUS_NAMES = frames.STATUS_NAMES


class Serving(Protocol):
    """What the ticker needs of the process's runtime (``blazing.runtime.Runtime``):
    kept to a protocol, since nothing below the app imports the runtime."""

    settings: Settings
    session: Reader | None

    def encode_args(self, defn: Definition, args: tuple[Any, ...], kwargs: dict[str, Any],
                    where: str) -> bytes:
        """The arguments of a run, encoded for the store."""
        ...


class ScheduleNotFound(BlazingError, LookupError):
    """No schedule of that name in the store: no process serving the app declared it
    (or it has not been served for 30 days)."""


def _dt(ms: int) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def _ms(t: datetime) -> int:
    return int(round(t.timestamp() * 1000))


@dataclass(frozen=True)
class ScheduleInfo:
    """A schedule as the store knows it (``app.schedules()``, ``blazing schedules``)."""

    name: str
    workflow: str
    spec: str
    tz: str
    next_tick: datetime | None
    paused: bool
    created_at: datetime | None
    last_tick: datetime | None
    last_run: str | None
    last_run_at: datetime | None
    last_status: str | None
    fired: int
    skipped: int
    seen_at: datetime | None

    @classmethod
    def from_frame(cls, f: list[Any]) -> ScheduleInfo:
        """From the core's schedule state frame (see ``frames``)."""
        status = f[frames.SCHED_LAST_STATUS]
        return cls(
            name=f[frames.SCHED_NAME], workflow=f[frames.SCHED_WORKFLOW],
            spec=f[frames.SCHED_SPEC], tz=f[frames.SCHED_TZ],
            next_tick=_dt(f[frames.SCHED_NEXT]), paused=f[frames.SCHED_PAUSED],
            created_at=_dt(f[frames.SCHED_CREATED]), last_tick=_dt(f[frames.SCHED_LAST_TICK]),
            last_run=f[frames.SCHED_LAST_UNIT] or None,
            last_run_at=_dt(f[frames.SCHED_LAST_FIRED]),
            last_status=_STATUS_NAMES.get(status) if status else None,
            fired=f[frames.SCHED_FIRED], skipped=f[frames.SCHED_SKIPPED],
            seen_at=_dt(f[frames.SCHED_SEEN]))

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON (times as ISO 8601 strings, UTC)."""
        return {k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in self.__dict__.items()}


@dataclass
class Schedule:
    """One schedule declared in code: run ``workflow`` with ``args``/``kwargs`` at each
    tick of ``trigger``."""

    name: str
    workflow: str
    trigger: Trigger
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    overlap: bool = False
    catch_up: float | None = DEFAULT_CATCH_UP

    def window(self) -> timedelta | None:
        """How late a tick may be and still run (None: any)."""
        if self.catch_up is None:
            return None
        return timedelta(seconds=max(self.catch_up, ON_TIME))


@dataclass
class _Ticking:
    """A ticker's view of one schedule: where its unclaimed ticks start."""

    schedule: Schedule
    floor: datetime  # the schedule's creation or latest claimed tick, whichever is later
    registered: float  # time.monotonic() of the ticker's last registration


def _floor(state: list[Any]) -> datetime:
    return datetime.fromtimestamp(max(state[frames.SCHED_CREATED], state[frames.SCHED_LAST_TICK])
                                  / 1000, UTC)


def list_schedules(session: Reader) -> list[ScheduleInfo]:
    """Every schedule in the store (declared by any process), by name."""
    return [ScheduleInfo.from_frame(f) for f in session.query(frames.query_schedules())]


def pause_schedule(session: Reader, name: str, paused: bool = True) -> ScheduleInfo:
    """Pause (or resume) a schedule for every process serving the app."""
    if not isinstance(name, str):
        raise TypeError(f"a schedule name is a str, not {type(name).__name__} {name!r}")
    try:
        state = session.query(frames.query_schedule_pause(name, paused))
    except NativeError as exc:
        if exc.code == "not_found":
            raise ScheduleNotFound(
                f"no schedule {name!r} in this app's store: no process serving the app has "
                "declared it (or none has served it for 30 days); `blazing schedules` lists "
                "them") from None
        if exc.code == "invalid":
            raise ConfigurationError(str(exc)) from None
        raise
    return ScheduleInfo.from_frame(state)


class Schedules:
    """An app's schedules: the ones its code declares, the store's view of all of them
    (list, pause, resume), and the ticker that fires them in a serving process."""

    def __init__(self, definitions: dict[str, Definition]) -> None:
        self._definitions = definitions
        self._declared: dict[str, Schedule] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._runtime: Serving | None = None

    # ------------------------------------------------------------ declaring

    def declare(self, target: str | Callable[..., Any], trigger: Trigger, *,
                name: str | None = None, args: tuple[Any, ...] | list[Any] = (),
                kwargs: dict[str, Any] | None = None, overlap: bool = False,
                catch_up: float | None = DEFAULT_CATCH_UP) -> Schedule:
        """Declare (or replace) a schedule; see :meth:`blazing.app.BaseApp.schedule`."""
        defn = self._resolve(target)
        if not isinstance(trigger, (Cron, Period)):
            raise ConfigurationError(
                f"schedule of {defn.name!r}: the trigger must be Cron(...) or Period(...), "
                f"not {trigger!r}")
        sname = defn.name if name is None else name
        if not isinstance(sname, str) or not _NAME.match(sname):
            raise ConfigurationError(
                f"schedule name {sname!r}: 1 to 200 letters, digits, '_', '-' or '.'")
        if not isinstance(args, (tuple, list)):
            raise ConfigurationError(f"schedule {sname!r}: args must be a tuple or list")
        if kwargs is not None and not isinstance(kwargs, dict):
            raise ConfigurationError(f"schedule {sname!r}: kwargs must be a dict")
        if catch_up is not None and (isinstance(catch_up, bool) or
                                     not isinstance(catch_up, (int, float)) or catch_up < 0):
            raise ConfigurationError(
                f"schedule {sname!r}: catch_up={catch_up!r} must be seconds >= 0 or None")
        sched = Schedule(sname, defn.name, trigger, tuple(args), dict(kwargs or {}),
                         bool(overlap), None if catch_up is None else float(catch_up))
        try:  # arguments that cannot cross processes fail here, not at every tick
            codec.encode((sched.args, sched.kwargs))
        except codec.CodecError as exc:
            raise ConfigurationError(f"schedule {sname!r}: its arguments: {exc}") from exc
        with self._lock:
            self._declared[sname] = sched
        self._wake.set()
        rt = self._runtime
        if rt is not None and self._thread is None and rt.settings.local_workers:
            self.start(rt)
        return sched

    def _resolve(self, target: str | Callable[..., Any]) -> Definition:
        if isinstance(target, str):
            defn = self._definitions.get(target)
        else:
            defn = getattr(target, "__blazing_definition__", None)
            if defn is not None and self._definitions.get(defn.name) is not defn:
                defn = None
            if defn is None and callable(target):
                raise UnknownNameError(
                    f"{getattr(target, '__name__', target)!r} is not a workflow or step of "
                    "this app: decorate it with @app.workflow (or @app.step) first, and put "
                    "@app.schedule above that decorator")
        if defn is None:
            known = ", ".join(sorted(self._definitions)) or "none"
            raise UnknownNameError(f"no workflow or step named {target!r} to schedule "
                                   f"(registered: {known})")
        return defn

    @property
    def declared(self) -> dict[str, Schedule]:
        """The schedules this process's code declared, by name."""
        with self._lock:
            return dict(self._declared)

    # ------------------------------------------------------- store's view

    def pause(self, session: Reader, name: str, paused: bool = True) -> ScheduleInfo:
        """:func:`pause_schedule`, registering first a schedule this process declared
        that no ticker registered yet (a client that declares and pauses at once)."""
        mine = self.declared.get(name) if isinstance(name, str) else None
        if mine is not None:
            session.query(self._register_frame(mine, datetime.now(UTC)))
        return pause_schedule(session, name, paused)

    @staticmethod
    def _register_frame(s: Schedule, now: datetime) -> list[Any]:
        return frames.query_schedule_register(s.name, s.workflow, s.trigger.spec,
                                              s.trigger.tz, _ms(s.trigger.next_after(now)))

    # ------------------------------------------------------------- ticker

    def bind(self, runtime: Serving) -> None:
        """Know the runtime, so that a schedule declared after it starts ticks too."""
        self._runtime = runtime

    def start(self, runtime: Serving) -> None:
        """Start ticking in this process (idempotent; nothing to do without schedules
        until one is declared)."""
        self._runtime = runtime
        with self._lock:
            if self._thread is not None or not self._declared:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._main, args=(runtime,),
                                            name="blazing-schedules", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop ticking (the runtime is stopping); waits for a fire in progress."""
        with self._lock:
            thread, self._thread = self._thread, None
        self._runtime = None
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        thread.join(timeout)

    def _main(self, runtime: Serving) -> None:
        ticking: dict[str, _Ticking] = {}
        while not self._stop.is_set():
            self._wake.clear()
            wait = REGISTER_EVERY  # no schedule needs anything sooner; a declaration wakes it
            for sched in self.declared.values():
                if self._stop.is_set():
                    return
                try:
                    wait = min(wait, self._visit(runtime, ticking, sched))
                except EngineClosedError:
                    return
                except Exception as exc:  # noqa: BLE001 - the store failed; try again soon
                    log.warning("schedule %s: %s: %s (trying again in %.0f s)", sched.name,
                                type(exc).__name__, exc, RETRY_SECONDS)
                    wait = min(wait, RETRY_SECONDS)
            self._wake.wait(max(wait, 0.0))  # until the next tick due, or a declaration

    def _visit(self, runtime: Serving, ticking: dict[str, _Ticking], sched: Schedule) -> float:
        """Fire ``sched``'s latest due tick, if any; seconds until it needs a visit."""
        session = runtime.session
        if session is None:
            raise EngineClosedError("the app stopped")
        now = datetime.now(UTC)
        tk = ticking.get(sched.name)
        if tk is not None and tk.schedule is sched and \
                time.monotonic() - tk.registered > REGISTER_EVERY:
            state = session.query(self._register_frame(sched, now))  # keeps it listed
            tk.floor, tk.registered = max(tk.floor, _floor(state)), time.monotonic()
        if tk is None or tk.schedule is not sched:  # new, or declared again
            state = session.query(self._register_frame(sched, now))
            tk = ticking[sched.name] = _Ticking(sched, _floor(state), time.monotonic())
            log.info("schedule %s: %s%s of %s registered%s", sched.name,
                     sched.trigger.spec, f" {sched.trigger.tz}" if sched.trigger.tz else "",
                     sched.workflow, " (paused)" if state[frames.SCHED_PAUSED] else "")
        due = self._latest_due(sched, tk.floor, now)
        if due is not None:
            self._fire(runtime, tk, due)
            tk.floor = max(tk.floor, due)
            now = datetime.now(UTC)
        nxt = sched.trigger.next_after(max(now, tk.floor))
        return min((nxt - now).total_seconds(), REGISTER_EVERY)

    @staticmethod
    def _latest_due(sched: Schedule, floor: datetime, now: datetime) -> datetime | None:
        """The latest tick after ``floor``, at or before ``now`` and within the catch-up
        window; None if there is none."""
        window = sched.window()
        start = floor if window is None else max(floor, now - window)
        trigger = sched.trigger
        for back in (*_LOOKBACK, None):
            lo = start if back is None else max(start, now - back)
            tick = trigger.next_after(lo)
            if tick <= now:
                while (later := trigger.next_after(tick)) <= now:
                    tick = later
                return tick
            if lo == start:
                return None
        return None

    def _fire(self, runtime: Serving, tk: _Ticking, tick: datetime) -> None:
        sched = tk.schedule
        session = runtime.session
        if session is None:
            raise EngineClosedError("the app stopped")
        defn = self._definitions.get(sched.workflow)
        if defn is None:
            raise UnknownNameError(f"schedule {sched.name}: workflow {sched.workflow!r} is no "
                                   "longer registered")
        when = tick.isoformat()
        payload = runtime.encode_args(defn, sched.args, sched.kwargs,
                                      f"schedule {sched.name} tick {when}")
        o = defn.options
        outcome, prev_ms, unit = session.query(frames.query_schedule_fire(
            sched.name, sched.workflow, sched.trigger.spec, sched.trigger.tz,
            _ms(sched.trigger.next_after(tick)), _ms(tick), sched.overlap, defn.lane, payload,
            o.retries, o.backoff_ms, o.backoff_max_ms, o.timeout_ms, o.priority))
        if outcome == frames.TICK_FIRED:
            log.info("schedule %s: tick %s: run %s of %s submitted", sched.name, when, unit,
                     sched.workflow)
            self._log_missed(sched, tk.floor, _dt(prev_ms), tick)
        elif outcome == frames.TICK_OVERLAP:
            log.warning("schedule %s: tick %s skipped: its previous run %s has not finished "
                        "(overlap=False)", sched.name, when, unit)
        elif outcome == frames.TICK_PAUSED:
            log.debug("schedule %s: tick %s not run: the schedule is paused", sched.name, when)
        else:
            log.debug("schedule %s: tick %s taken by another process", sched.name, when)

    @staticmethod
    def _log_missed(sched: Schedule, floor: datetime, prev: datetime | None,
                    tick: datetime) -> None:
        """Say which ticks before ``tick`` nobody claimed (nothing served the app)."""
        since = max(floor, prev) if prev is not None else floor
        missed = ticks_between(sched.trigger, since, tick, MISSED_COUNT_MAX)
        if missed:
            more = " or more" if missed >= MISSED_COUNT_MAX else ""
            window = sched.window()
            rule = f"within {window.total_seconds():g} s" if window is not None else "of any age"
            log.warning("schedule %s: %d%s tick(s) after %s never ran (nothing served the app "
                        "then); only the latest tick %s ran (catch-up: the latest missed tick "
                        "%s)", sched.name, missed, more, since.isoformat(), tick.isoformat(),
                        rule)


__all__ = ["DEFAULT_CATCH_UP", "Cron", "Period", "Schedule", "ScheduleInfo",
           "ScheduleNotFound", "Schedules", "list_schedules", "pause_schedule"]
