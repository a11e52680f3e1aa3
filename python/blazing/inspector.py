"""The operator's read path: what the store says about runs, apart from the runtime.

An :class:`Inspector` works over an open core session and nothing else: the app
uses the one of its runtime's session; the ``blazing`` console script opens a
session of its own and never starts a runtime (no workers, no event loop).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import msgpack

from blazing import frames
from blazing.errors import ConfigurationError
from blazing.lookup import check_unit_id, looking_up
from blazing.records import Breadcrumb, OperationRecord, StepStats, Timeline
from blazing.schedules import ScheduleInfo, list_schedules, pause_schedule

# A moment, as callers give it: a datetime, seconds ago, or "30s", "15m", "2h", "1d" ago.
When = datetime | float | int | str | None
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def moment(value: When, what: str = "since") -> datetime | None:
    """A point in time from a datetime, a number of seconds ago or "15m"/"2h"/"1d" ago."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, bool):
        raise ConfigurationError(f"{what}={value!r} is not a time")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and value[:-1].replace(".", "", 1).isdigit() and \
            value[-1:] in _UNITS:
        seconds = float(value[:-1]) * _UNITS[value[-1]]
    else:
        raise ConfigurationError(
            f"{what}={value!r}: give a datetime, seconds ago, or a duration such as "
            "'30s', '15m', '2h', '1d'")
    return datetime.now(timezone.utc) - timedelta(seconds=seconds)


def _ms(t: datetime | None) -> int:
    return int(t.timestamp() * 1000) if t else 0


_STATUS = {name: code for code, name in frames.STATUS_NAMES.items()}
#: Largest limit or offset of a page of runs (the core's bound on any count in a frame).
MAX_PAGE = 1 << 20


def _page_arg(name: str, value: object, least: int) -> int:
    """A page's limit (``least`` 1) or offset (0), checked here so that a bad one is a
    ConfigurationError naming it rather than a frame the core refuses."""
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= MAX_PAGE:
        raise ConfigurationError(f"{name}={value!r} must be an int from {least} to {MAX_PAGE:,}")
    return value


def _plain(value: Any) -> Any:
    """Times the core sends as msgpack timestamps, as datetimes (UTC); a zero time
    (never) as None."""
    if isinstance(value, msgpack.Timestamp):
        return value.to_datetime() if value.seconds > 0 else None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Reader(Protocol):
    """What the inspector needs of a core session (``blazing._native.Session``)."""

    def get(self, unit: str, path: str) -> list[Any]: ...  # noqa: D102
    def query(self, query: list[Any]) -> Any: ...  # noqa: D102
    def stats(self) -> list[Any]: ...  # noqa: D102


class Inspector:
    """Read-only calls (and requeue) against the store of one session."""

    def __init__(self, session: Reader) -> None:
        self._session = session

    def record(self, unit_id: str, path: str = "0") -> OperationRecord:
        """The full record of an operation (``RunNotFound`` for an unknown one)."""
        check_unit_id(unit_id)
        with looking_up(unit_id):
            return OperationRecord.from_frame(self._session.get(unit_id, path))

    def status(self, unit_id: str, path: str = "0") -> str:
        """Status name of an operation: pending, running, succeeded, failed, cancelled."""
        check_unit_id(unit_id)
        with looking_up(unit_id):
            status = self._session.get(unit_id, path)[frames.OP_STATUS]
        return frames.STATUS_NAMES.get(status, str(status))

    def failed_runs(self, limit: int = 50, offset: int = 0) -> list[OperationRecord]:
        """The dead letters: failed runs, most recent first."""
        rows = self._session.query(frames.query_failed(_page_arg("offset", offset, 0),
                                                       _page_arg("limit", limit, 1)))
        return [OperationRecord.from_frame(r) for r in rows]

    def requeue(self, unit_id: str) -> None:
        """Run a failed or cancelled run again; steps that succeeded are not re-run."""
        check_unit_id(unit_id)
        with looking_up(unit_id):
            self._session.query(frames.query_requeue(unit_id))

    def counters(self) -> dict[str, Any]:
        """What this process ran: started/succeeded/failed/retried, duration histogram,
        and per step name the counts of how its attempts ended."""
        started, ok, failed, retried, total, buckets, by_name = self._session.query(
            frames.query_counters())
        return {"started": started, "succeeded": ok, "failed": failed, "retried": retried,
                "duration_sum": total, "duration_buckets": buckets,
                "by_name": {n: {"succeeded": c[frames.COUNT_OK], "failed": c[frames.COUNT_FAILED],
                                "retried": c[frames.COUNT_RETRIED],
                                "cancelled": c[frames.COUNT_CANCELLED],
                                "sum_ms": c[frames.COUNT_SUM_MS],
                                "buckets": c[frames.COUNT_BUCKETS]}
                            for n, c in by_name.items()}}

    def decisions(self) -> list[dict[str, Any]]:
        """The latest optimizer decisions (at most 256), oldest first: the embedded
        optimizer's, or on Redis the foremen's (string values, with ``foreman``)."""
        return list(self._session.query(frames.query_decisions()))

    def runs(self, status: str | None = None, workflow: str | None = None, since: When = None,
             until: When = None, limit: int = 50) -> list[OperationRecord]:
        """Runs (their root operations), newest first, from the index of runs."""
        code = 0
        if status is not None:
            if status not in _STATUS:
                raise ConfigurationError(
                    f"status={status!r}: one of {', '.join(_STATUS)}")
            code = _STATUS[status]
        rows = self._session.query(frames.query_runs(
            _ms(moment(since)), _ms(moment(until, "until")), code, workflow or "",
            _page_arg("limit", limit, 1)))
        return [OperationRecord.from_frame(r) for r in rows]

    def history(self, unit_id: str) -> list[OperationRecord]:
        """Every operation of a run, in call order (``RunNotFound`` for an unknown run)."""
        check_unit_id(unit_id)
        with looking_up(unit_id):
            rows = self._session.query(frames.query_unit(unit_id))
        return [OperationRecord.from_frame(r) for r in rows]

    def breadcrumbs(self, unit_id: str) -> Timeline:
        """A run's timeline: its operations' records merged with the breadcrumbs kept."""
        check_unit_id(unit_id)
        with looking_up(unit_id):
            dropped, events = self._session.query(frames.query_timeline(unit_id))
        return Timeline(unit_id, [Breadcrumb.from_frame(e) for e in events], dropped)

    def stats(self, since: When = "1h") -> dict[str, dict[str, StepStats]]:
        """Per step or workflow name and per lane: attempts by outcome, error rate and
        p50/p95/p99 duration since a time (counted by every process, kept for a day)."""
        start = moment(since) or datetime.now(timezone.utc) - timedelta(days=1)
        bounds, table = self._session.query(frames.query_stats(_ms(start)))
        steps = {n: StepStats.from_frame(n, c, bounds) for n, c in table.items()
                 if not n.startswith("@")}
        lanes = {n[1:]: StepStats.from_frame(n[1:], c, bounds) for n, c in table.items()
                 if n.startswith("@")}
        return {"steps": dict(sorted(steps.items())), "lanes": lanes}

    def fleet(self) -> list[dict[str, Any]]:
        """The foremen on the store (Redis) and their workers, as last recorded."""
        return _plain(list(self._session.query(frames.query_fleet())["foremen"] or []))

    def series(self, since: When = "15m", coarse: bool = False) -> list[dict[str, Any]]:
        """The foremen's samples since a time (every beat for an hour, or every minute
        for a day with ``coarse``), oldest first."""
        return _plain(list(self._session.query(frames.query_series(_ms(moment(since)), coarse))
                           or []))

    def schedules(self) -> list[ScheduleInfo]:
        """Every schedule in the store, by name (see :mod:`blazing.schedules`)."""
        return list_schedules(self._session)

    def pause_schedule(self, name: str, paused: bool = True) -> ScheduleInfo:
        """Pause (or resume) a schedule for every process (``ScheduleNotFound``)."""
        return pause_schedule(self._session, name, paused)

    def lanes(self) -> dict[str, dict[str, float]]:
        """Per lane: depth, oldest_age_ms, running, capacity, inflight."""
        return {lane: dict(zip(frames.STATS_FIELDS, row, strict=True))
                for lane, row in zip(frames.LANE_NAMES, self._session.stats(), strict=True)}
