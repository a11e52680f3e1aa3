"""When a schedule ticks: :class:`Cron` (a cron expression in a time zone) and
:class:`Period` (a fixed interval).

A trigger is pure arithmetic on instants: every process that serves an app
computes the same ticks from the same trigger, with no shared state, which is
what lets them race for each tick in the store (see :mod:`blazing.schedules`).
Ticks are aware UTC datetimes.

Daylight saving time, for a cron expression whose hour field names hours (not
``*``): a wall time that does not exist (clocks go forward: 02:30 in
Europe/Paris on the last Sunday of March) ticks once, at the instant the
clocks jump (03:00 CEST); a wall time that occurs twice (clocks go back)
ticks once, at its first occurrence. With an hour field of ``*`` ("every
hour") the ticks follow real hours instead: none in the skipped hour, and
both passes of the repeated one. This is Vixie cron's rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from blazing.errors import ConfigurationError

UTC = timezone.utc
#: The shortest Period: each tick costs every serving process a store round trip.
MIN_PERIOD = timedelta(milliseconds=100)
# No real time zone shifts its clocks by this much or more at once: a search
# of wall times this far around an instant finds every wall time that maps
# near it.
_MAX_SHIFT = timedelta(hours=3)
# A cron expression that matches nothing within this many years matches never
# (February 30th); 28 years hold every weekday of every date.
_SEARCH_YEARS = 30


class Trigger(Protocol):
    """What a schedule needs of a trigger."""

    @property
    def spec(self) -> str:
        """The trigger for people: "cron */5 * * * *", "every 10s"."""

    @property
    def tz(self) -> str:
        """The time zone of its wall times ("" for an interval)."""

    def next_after(self, t: datetime) -> datetime:
        """The first tick strictly after ``t`` (an aware datetime), in UTC."""


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ConfigurationError(f"{t!r} has no time zone: give an aware datetime")
    return t.astimezone(UTC)


# ------------------------------------------------------------------ Period


@dataclass(frozen=True)
class Period:
    """A tick every fixed interval: ``Period(seconds=30)``, ``Period(minutes=5)``,
    ``Period(hours=1, minutes=30)`` or ``Period(timedelta(...))``.

    Ticks are aligned to the Unix epoch (whole multiples of the interval since
    1970-01-01 UTC), so every process computes the same ones: ``Period(minutes=5)``
    ticks at :00, :05, :10 UTC; ``Period(days=1)`` at midnight UTC (use :class:`Cron`
    for local wall times). The interval is at least 0.1 s and counts whole milliseconds.
    """

    seconds: float | timedelta = 0
    minutes: float = 0
    hours: float = 0
    days: float = 0
    interval: timedelta = field(init=False, repr=False, compare=False)
    _ms: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        base = self.seconds
        try:
            if isinstance(base, timedelta):
                total = base + timedelta(minutes=self.minutes, hours=self.hours, days=self.days)
            else:
                for what in ("seconds", "minutes", "hours", "days"):
                    v = getattr(self, what)
                    if isinstance(v, bool) or not isinstance(v, (int, float)):
                        raise TypeError(what)
                total = timedelta(seconds=base, minutes=self.minutes, hours=self.hours,
                                  days=self.days)
        except (TypeError, OverflowError):
            raise ConfigurationError(
                f"Period(seconds={self.seconds!r}, minutes={self.minutes!r}, "
                f"hours={self.hours!r}, days={self.days!r}): give numbers or a timedelta"
            ) from None
        ms = round(total / timedelta(milliseconds=1))
        if ms < MIN_PERIOD / timedelta(milliseconds=1):
            raise ConfigurationError(
                f"Period of {total.total_seconds()} s: the interval must be at least "
                f"{MIN_PERIOD.total_seconds()} s")
        object.__setattr__(self, "_ms", ms)
        object.__setattr__(self, "interval", timedelta(milliseconds=ms))

    @property
    def spec(self) -> str:
        """E.g. "every 90s", "every 0.5s"."""
        s = self._ms / 1000
        return f"every {s:g}s"

    @property
    def tz(self) -> str:
        """Intervals have no time zone."""
        return ""

    def next_after(self, t: datetime) -> datetime:
        """The first multiple of the interval (since the epoch) strictly after ``t``."""
        ms = _epoch_ms(_utc(t))
        return _from_ms((ms // self._ms + 1) * self._ms)

    def ticks_between(self, after: datetime, before: datetime) -> int:
        """How many ticks lie strictly between two instants."""
        a, b = _epoch_ms(_utc(after)), _epoch_ms(_utc(before))
        if b <= a:
            return 0
        return max(0, (b - 1) // self._ms - a // self._ms)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_ms(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(milliseconds=1)


def _from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


# -------------------------------------------------------------------- Cron

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@hourly": "0 * * * *"}
# name, lowest, highest, names
_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
           ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))
_ITEM = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?$")


def _parse_field(text: str, what: str, lo: int, hi: int, names: dict[str, int],
                 expr: str) -> frozenset[int]:
    def bad(why: str) -> ConfigurationError:
        return ConfigurationError(f"cron {expr!r}: {what} field {text!r}: {why}")

    def value(tok: str) -> int:
        if tok in names:
            return names[tok]
        if not tok.isdigit():
            raise bad(f"{tok!r} is not a number{' or a name' if names else ''}")
        v = int(tok)
        if not lo <= v <= hi:
            raise bad(f"{v} is outside {lo}-{hi}")
        return v

    out: set[int] = set()
    for item in text.lower().split(","):
        m = _ITEM.match(item)
        if not m:
            raise bad(f"cannot read {item!r}")
        span, step_text = m.group(1), m.group(2)
        step = int(step_text) if step_text else 1
        if step < 1:
            raise bad("a step must be at least 1")
        if span == "*":
            first, last = lo, hi
        elif "-" in span:
            a, b = span.split("-")
            first, last = value(a), value(b)
            if first > last:
                raise bad(f"range {span} runs backwards")
        else:
            first = value(span)
            last = hi if step_text else first
        out.update(range(first, last + 1, step))
    return frozenset(out)


@dataclass(frozen=True)
class Cron:
    """A cron expression in a time zone: ``Cron("*/5 * * * *")``,
    ``Cron("0 7 * * mon-fri", tz="Europe/Paris")``.

    Five fields, minute hour day-of-month month day-of-week, with ``*``, numbers,
    ranges ``a-b``, steps ``*/n`` and ``a-b/n``, lists ``a,b``, month and weekday
    names (``jan``, ``mon``; Sunday is 0 or 7), and the macros ``@yearly``,
    ``@monthly``, ``@weekly``, ``@daily``, ``@hourly``. When both day fields are
    restricted a day matches either (as in cron). ``tz`` is an IANA zone name
    (default UTC); daylight saving changes follow the rule in this module's doc.
    """

    expr: str
    tz: str = "UTC"
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _minutes: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _hours: frozenset[int] = field(init=False, repr=False, compare=False)
    _doms: frozenset[int] = field(init=False, repr=False, compare=False)
    _months: frozenset[int] = field(init=False, repr=False, compare=False)
    _dows: frozenset[int] = field(init=False, repr=False, compare=False)
    _dom_any: bool = field(init=False, repr=False, compare=False)
    _dow_any: bool = field(init=False, repr=False, compare=False)
    _every_hour: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.expr, str):
            raise ConfigurationError(f"Cron needs an expression string, not {self.expr!r}")
        if not isinstance(self.tz, str) or not self.tz:
            raise ConfigurationError(f"Cron tz={self.tz!r}: give an IANA zone name such as "
                                     "'Europe/Paris'")
        try:
            zone = ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(
                f"Cron tz={self.tz!r}: no such time zone (IANA names, e.g. 'Europe/Paris', "
                "'America/New_York', 'UTC')") from None
        text = _MACROS.get(self.expr.strip().lower(), self.expr)
        parts = text.split()
        if len(parts) != 5:
            raise ConfigurationError(
                f"cron {self.expr!r}: needs 5 fields (minute hour day-of-month month "
                f"day-of-week) or a macro such as @daily, got {len(parts)}")
        sets = [_parse_field(p, what, lo, hi, names, self.expr)
                for p, (what, lo, hi, names) in zip(parts, _FIELDS, strict=True)]
        dows = frozenset(d % 7 for d in sets[4])
        set_ = object.__setattr__
        set_(self, "_zone", zone)
        set_(self, "_minutes", tuple(sorted(sets[0])))
        set_(self, "_hours", sets[1])
        set_(self, "_doms", sets[2])
        set_(self, "_months", sets[3])
        set_(self, "_dows", dows)
        set_(self, "_dom_any", parts[2] == "*")
        set_(self, "_dow_any", parts[4] == "*")
        set_(self, "_every_hour", parts[1] == "*")
        # An expression that never matches (February 30th) is refused now.
        if self._next_wall(datetime(2000, 1, 1), datetime(2000 + _SEARCH_YEARS, 1, 1)) is None:
            raise ConfigurationError(f"cron {self.expr!r} matches no date")

    @property
    def spec(self) -> str:
        """E.g. "cron */5 * * * *"."""
        return f"cron {self.expr}"

    # -- wall times

    def _day_ok(self, d: datetime) -> bool:
        dom = d.day in self._doms
        dow = (d.isoweekday() % 7) in self._dows
        if self._dom_any or self._dow_any:
            return dom and dow
        return dom or dow

    def _next_wall(self, t: datetime, limit: datetime) -> datetime | None:
        """The first matching wall time at or after naive ``t`` (whole minutes), before
        ``limit``, or None."""
        t = t.replace(second=0, microsecond=0)
        while t < limit:
            if t.month not in self._months:
                y, m = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
                t = datetime(y, m, 1)
            elif not self._day_ok(t):
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
            elif t.hour not in self._hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            else:
                later = [m for m in self._minutes if m >= t.minute]
                if later:
                    return t.replace(minute=later[0])
                t = t.replace(minute=0) + timedelta(hours=1)
        return None

    def _instants(self, wall: datetime) -> list[datetime]:
        """The UTC ticks of one matching wall time (none, one or two; see the module)."""
        zone = self._zone
        first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
        if first == second:
            return [first]
        if first.astimezone(zone).replace(tzinfo=None) == wall:
            # Repeated (clocks went back): fold 0 is the first pass.
            return [first, second] if self._every_hour else [first]
        # Skipped (clocks went forward): fold 1 maps before the jump, fold 0 after.
        if self._every_hour:
            return []
        return [self._jump(second, first)]

    def _jump(self, before: datetime, after: datetime) -> datetime:
        """The instant the clocks jump, between two instants either side of it."""
        zone = self._zone
        offset = before.astimezone(zone).utcoffset()
        lo, hi = before, after
        while hi - lo > timedelta(seconds=1):
            mid = lo + (hi - lo) / 2
            if mid.astimezone(zone).utcoffset() == offset:
                lo = mid
            else:
                hi = mid
        whole = hi.replace(microsecond=0)  # transitions fall on whole seconds
        return whole if whole.astimezone(zone).utcoffset() != offset else \
            whole + timedelta(seconds=1)

    def next_after(self, t: datetime) -> datetime:
        """The first tick strictly after ``t``, in UTC."""
        t = _utc(t)
        zone = self._zone
        wall = t.astimezone(zone).replace(tzinfo=None, fold=0)
        # The common case: no clock change from a while before t to the next wall
        # time that matches, which is then the next tick at t's offset.
        start = wall.replace(second=0, microsecond=0) + timedelta(minutes=1)
        nearest = self._next_wall(start, wall + timedelta(days=1))
        if nearest is not None:
            offset = t.astimezone(zone).utcoffset()
            assert offset is not None
            tick = (nearest - offset).replace(tzinfo=UTC)
            if (t - _MAX_SHIFT).astimezone(zone).utcoffset() == offset and \
                    tick.astimezone(zone).utcoffset() == offset:
                return tick
        return self._search_after(t, wall)

    def _search_after(self, t: datetime, wall: datetime) -> datetime:
        """next_after near a clock change: every wall time that may map after ``t``."""
        zone = self._zone
        # Wall times up to the largest shift before t may map after it.
        cursor: datetime | None = wall - _MAX_SHIFT
        limit = wall + timedelta(days=366 * _SEARCH_YEARS)
        best: datetime | None = None
        while cursor is not None:
            cursor = self._next_wall(cursor, limit)
            if cursor is None:
                break
            if best is not None and \
                    cursor > best.astimezone(zone).replace(tzinfo=None) + _MAX_SHIFT:
                break  # no later wall time maps before the best tick
            for tick in self._instants(cursor):
                if tick > t and (best is None or tick < best):
                    best = tick
            cursor += timedelta(minutes=1)
        if best is None:
            raise ConfigurationError(f"cron {self.expr!r} has no tick after {t.isoformat()}")
        return best


def ticks_between(trigger: Trigger, after: datetime, before: datetime,
                  most: int = 100_000) -> int:
    """How many ticks lie strictly between two instants (counting at most ``most``)."""
    if isinstance(trigger, Period):
        return min(trigger.ticks_between(after, before), most)
    n, t = 0, trigger.next_after(after)
    while t < before and n < most:
        n += 1
        t = trigger.next_after(t)
    return n


__all__ = ["Cron", "MIN_PERIOD", "Period", "Trigger", "ticks_between"]
