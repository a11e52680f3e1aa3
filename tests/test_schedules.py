"""Schedules without Redis: cron and interval arithmetic (time zones, DST), the
missed-tick policy, declaring schedules, and an embedded app ticking them (runs,
pause, resume, overlap). The fleet of real workers is in test_schedules_fleet.py."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from blazing import Blazing, ConfigurationError, Cron, Period, ScheduleNotFound, SyncBlazing
from blazing.connectors import SchedulerConnector
from blazing.errors import UnknownNameError
from blazing.schedules import ON_TIME, Schedule, Schedules
from blazing.triggers import ticks_between
from tests.support.sockets import wait_for

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")
SECOND = timedelta(seconds=1)
RUNS_TIMEOUT = 30.0


def ticks(trigger, start: datetime, n: int) -> list[datetime]:
    out, t = [], start
    for _ in range(n):
        t = trigger.next_after(t)
        out.append(t)
    return out


def walls(ts: list[datetime], zone: ZoneInfo = PARIS) -> list[str]:
    return [t.astimezone(zone).strftime("%m-%d %H:%M %Z") for t in ts]


# ------------------------------------------------------------------- cron


def test_cron_fixed_hour_across_dst_in_paris():
    daily = Cron("30 2 * * *", tz="Europe/Paris")
    # Spring: 02:30 does not exist on 31 March 2024; it runs when the clocks jump.
    assert walls(ticks(daily, datetime(2024, 3, 29, tzinfo=UTC), 4)) == [
        "03-29 02:30 CET", "03-30 02:30 CET", "03-31 03:00 CEST", "04-01 02:30 CEST"]
    assert daily.next_after(datetime(2024, 3, 30, 12, tzinfo=UTC)) == \
        datetime(2024, 3, 31, 1, 0, tzinfo=UTC)
    # Autumn: 02:30 happens twice on 27 October 2024; it runs at the first.
    assert walls(ticks(daily, datetime(2024, 10, 25, tzinfo=UTC), 4)) == [
        "10-25 02:30 CEST", "10-26 02:30 CEST", "10-27 02:30 CEST", "10-28 02:30 CET"]


def test_cron_every_hour_follows_real_hours_across_dst():
    half_hourly = Cron("*/30 * * * *", tz="Europe/Paris")
    # Spring: no tick in the skipped hour.
    assert walls(ticks(half_hourly, datetime(2024, 3, 31, 0, 0, tzinfo=UTC), 4)) == [
        "03-31 01:30 CET", "03-31 03:00 CEST", "03-31 03:30 CEST", "03-31 04:00 CEST"]
    # Autumn: both passes of the repeated hour, 30 real minutes apart throughout.
    autumn = ticks(half_hourly, datetime(2024, 10, 26, 23, 0, tzinfo=UTC), 6)
    assert walls(autumn) == ["10-27 01:30 CEST", "10-27 02:00 CEST", "10-27 02:30 CEST",
                             "10-27 02:00 CET", "10-27 02:30 CET", "10-27 03:00 CET"]
    assert {b - a for a, b in zip(autumn, autumn[1:], strict=False)} == {timedelta(minutes=30)}


def test_cron_in_new_york_and_utc():
    ny = ZoneInfo("America/New_York")
    weekday_9am = Cron("0 9 * * mon-fri", tz="America/New_York")
    got = ticks(weekday_9am, datetime(2024, 3, 8, 15, tzinfo=UTC), 3)  # Friday, 10:00 EST
    assert walls(got, ny) == ["03-11 09:00 EDT", "03-12 09:00 EDT", "03-13 09:00 EDT"]
    assert got[0] == datetime(2024, 3, 11, 13, 0, tzinfo=UTC)  # EDT is UTC-4
    assert Cron("0 9 * * *").next_after(datetime(2024, 1, 1, 9, 0, tzinfo=UTC)) == \
        datetime(2024, 1, 2, 9, 0, tzinfo=UTC)  # strictly after


def test_cron_fields_names_macros_and_the_day_rule():
    t0 = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)  # a Monday
    assert ticks(Cron("*/20 1-2 * * *"), t0, 4) == [
        datetime(2024, 1, 1, 1, m, tzinfo=UTC) for m in (0, 20, 40)] + \
        [datetime(2024, 1, 1, 2, 0, tzinfo=UTC)]
    assert Cron("0 0 1 jan,jul *").next_after(t0) == datetime(2024, 7, 1, tzinfo=UTC)
    assert Cron("@daily").next_after(t0) == datetime(2024, 1, 2, tzinfo=UTC)
    assert Cron("@hourly").next_after(t0) == datetime(2024, 1, 1, 1, tzinfo=UTC)
    assert Cron("0 0 * * 7").next_after(t0) == datetime(2024, 1, 7, tzinfo=UTC)  # Sunday
    # Both day fields restricted: either matches (the 13th, or any Friday).
    assert ticks(Cron("0 0 13 * fri"), t0, 2) == [datetime(2024, 1, 5, tzinfo=UTC),
                                                   datetime(2024, 1, 12, tzinfo=UTC)]
    assert Cron("0 0 29 2 *").next_after(t0) == datetime(2024, 2, 29, tzinfo=UTC)


@pytest.mark.parametrize(("expr", "tz", "says"), [
    ("* * * *", "UTC", "needs 5 fields"),
    ("61 * * * *", "UTC", "61 is outside 0-59"),
    ("* * * foo *", "UTC", "'foo' is not a number or a name"),
    ("5-1 * * * *", "UTC", "runs backwards"),
    ("*/0 * * * *", "UTC", "at least 1"),
    ("0 0 30 2 *", "UTC", "matches no date"),
    ("* * * * *", "Mars/Olympus", "no such time zone"),
])
def test_cron_refuses_bad_input_with_a_clear_error(expr, tz, says):
    with pytest.raises(ConfigurationError, match=says):
        Cron(expr, tz=tz)


def test_cron_needs_aware_datetimes():
    with pytest.raises(ConfigurationError, match="no time zone"):
        Cron("* * * * *").next_after(datetime(2024, 1, 1))


# ----------------------------------------------------------------- period


def test_period_ticks_are_aligned_to_the_epoch():
    five = Period(minutes=5)
    assert five.next_after(datetime(2024, 1, 1, 10, 3, 7, tzinfo=UTC)) == \
        datetime(2024, 1, 1, 10, 5, tzinfo=UTC)
    assert five.next_after(datetime(2024, 1, 1, 10, 5, tzinfo=UTC)) == \
        datetime(2024, 1, 1, 10, 10, tzinfo=UTC)
    assert Period(timedelta(hours=1), minutes=30).spec == "every 5400s"
    assert Period(seconds=0.5).next_after(datetime(2024, 1, 1, 0, 0, 0, 600000, tzinfo=UTC)) \
        == datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert Period(seconds=1).tz == ""
    assert ticks_between(Period(seconds=1), datetime(2024, 1, 1, tzinfo=UTC),
                         datetime(2024, 1, 1, 0, 0, 5, tzinfo=UTC)) == 4
    assert ticks_between(Cron("* * * * *"), datetime(2024, 1, 1, tzinfo=UTC),
                         datetime(2024, 1, 1, 1, tzinfo=UTC)) == 59


@pytest.mark.parametrize("bad", [dict(seconds=0), dict(seconds=0.01), dict(seconds="5"),
                                 dict(minutes=True), dict(seconds=-3)])
def test_period_refuses_bad_intervals(bad):
    with pytest.raises(ConfigurationError):
        Period(**bad)


# ---------------------------------------------------------- missed ticks


def test_only_the_latest_missed_tick_within_the_window_is_due():
    every_minute = Schedule("s", "wf", Cron("* * * * *"))
    floor = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    now = datetime(2024, 1, 1, 0, 30, 20, tzinfo=UTC)
    # Thirty ticks missed: only the latest is due.
    assert Schedules._latest_due(every_minute, floor, now) == \
        datetime(2024, 1, 1, 0, 30, tzinfo=UTC)
    # Nothing due before the next tick.
    assert Schedules._latest_due(every_minute, now - SECOND * 10, now) is None
    # Past the catch-up window, the missed tick does not run...
    strict = Schedule("s", "wf", Cron("0 * * * *"), catch_up=60)
    assert Schedules._latest_due(strict, floor, now) is None
    # ... but a tick a few seconds late is on time whatever the window says.
    never = Schedule("s", "wf", Cron("0 * * * *"), catch_up=0)
    hour = datetime(2024, 1, 1, 1, 0, tzinfo=UTC)
    assert Schedules._latest_due(never, floor, hour + SECOND * (ON_TIME - 1)) == hour
    assert Schedules._latest_due(never, floor, hour + SECOND * (ON_TIME + 1)) is None
    # catch_up=None: any age (a monthly tick missed three weeks ago still runs).
    monthly = Schedule("s", "wf", Cron("0 0 1 * *"), catch_up=None)
    assert Schedules._latest_due(monthly, datetime(2023, 12, 15, tzinfo=UTC),
                                 datetime(2024, 1, 22, tzinfo=UTC)) == \
        datetime(2024, 1, 1, tzinfo=UTC)


# -------------------------------------------------------------- declaring


def test_declaring_refuses_what_cannot_work(app):
    @app.workflow
    async def wf() -> None:
        return None

    async def plain() -> None:
        return None

    with pytest.raises(UnknownNameError, match="put @app.schedule above"):
        app.schedule(plain, Period(seconds=1))
    with pytest.raises(UnknownNameError, match="no workflow or step named 'nope'"):
        app.schedule("nope", Period(seconds=1))
    with pytest.raises(ConfigurationError, match="must be Cron"):
        app.schedule(wf, "*/5 * * * *")
    with pytest.raises(ConfigurationError, match="schedule name"):
        app.schedule(wf, Period(seconds=1), name="has space")
    with pytest.raises(ConfigurationError, match="catch_up"):
        app.schedule(wf, Period(seconds=1), catch_up=-1)
    with pytest.raises(ConfigurationError, match="its arguments"):
        app.schedule(wf, Period(seconds=1), args=(lambda: 1,))
    with pytest.raises(TypeError, match="give a Cron"):
        app.schedule(wf)
    assert app.declared_schedules == {}
    with pytest.raises(ScheduleNotFound, match="no schedule 'wf'"):
        app.pause_schedule("wf")


# ------------------------------------------------------------ embedded app


def scheduled_ticks(app, workflow: str) -> list[datetime]:
    return sorted(datetime.strptime(r.unit_id.partition("@")[2], "%Y%m%dT%H%M%S%z")
                  for r in app.runs(workflow=workflow, limit=1000))


def test_embedded_app_runs_pauses_and_resumes_a_schedule():
    app = Blazing()
    scheduler = SchedulerConnector(app)  # the original's form

    @app.workflow
    async def beat(tag: str) -> str:
        return tag

    sched = scheduler.schedule(beat, Period(seconds=1), args=("x",))
    assert sched.name == "beat" and app.declared_schedules["beat"] is sched

    async def main() -> None:
        async with app:
            await asyncio.to_thread(
                wait_for, lambda: len(scheduled_ticks(app, "beat")) >= 3, RUNS_TIMEOUT,
                "three runs")
            got = scheduled_ticks(app, "beat")
            assert [b - a for a, b in zip(got, got[1:], strict=False)] == [SECOND] * \
                (len(got) - 1)
            (state,) = scheduler.list()
            assert (state.name, state.workflow, state.spec, state.paused) == \
                ("beat", "beat", "every 1s", False)
            assert state.last_run is not None and state.last_run.startswith("beat@")
            assert state.fired >= len(got) and state.last_status is not None
            result = await app.get_run(state.last_run).result()
            assert result == "x"

            paused = scheduler.pause("beat")
            assert paused.paused
            mark = paused.last_tick
            await asyncio.to_thread(
                wait_for, lambda: app.schedules()[0].last_tick >= mark + 2 * SECOND,
                RUNS_TIMEOUT, "two ticks pass while paused")
            assert [t for t in scheduled_ticks(app, "beat") if t > mark] == []

            assert not scheduler.resume("beat").paused
            await asyncio.to_thread(
                wait_for, lambda: any(t > mark + 2 * SECOND for t in
                                      scheduled_ticks(app, "beat")),
                RUNS_TIMEOUT, "a run after resume")

    asyncio.run(main())


def test_sync_app_decorator_form_and_a_schedule_declared_after_start():
    app = SyncBlazing()

    @app.schedule(Cron("* * * * *"), name="minutely")
    @app.schedule(Period(seconds=1), name="fast", kwargs={"n": 2})
    @app.workflow
    async def double(n: int = 1) -> int:
        return 2 * n

    assert set(app.declared_schedules) == {"minutely", "fast"}
    with app:
        wait_for(lambda: len(scheduled_ticks(app, "double")) >= 2, RUNS_TIMEOUT, "two runs")
        runs = app.runs(workflow="double")
        assert "fast" in {r.unit_id.partition("@")[0] for r in runs}
        assert all(r.result() == 4 for r in runs if r.unit_id.startswith("fast@")
                   and r.status == "succeeded")

        @app.workflow
        async def later() -> str:
            return "later"

        app.schedule(later, Period(seconds=1))
        wait_for(lambda: len(scheduled_ticks(app, "later")) >= 1, RUNS_TIMEOUT, "a later run")
        assert {s.name for s in app.schedules()} == {"minutely", "fast", "later"}
        nxt = {s.name: s.next_tick for s in app.schedules()}["minutely"]
        assert nxt is not None and nxt.second == 0


def test_an_app_not_started_does_not_tick():
    app = Blazing()

    @app.schedule(Period(seconds=1))
    @app.workflow
    async def idle() -> None:
        return None

    assert not app._runtime.started
    assert not any(t.name == "blazing-schedules" for t in threading.enumerate())


def test_overlap_skips_ticks_while_the_previous_run_goes_on(caplog):
    app = SyncBlazing()
    release = threading.Event()

    @app.schedule(Period(seconds=1), name="slow")
    @app.workflow
    async def slow() -> str:
        await asyncio.get_running_loop().run_in_executor(None, release.wait, RUNS_TIMEOUT)
        return "done"

    caplog.set_level(logging.WARNING, logger="blazing.schedules")
    with app:
        try:
            wait_for(lambda: any(s.skipped >= 2 for s in app.schedules()), RUNS_TIMEOUT,
                     "two ticks skipped while the first run goes on")
            assert len(scheduled_ticks(app, "slow")) == 1
            first = app.schedules()[0].last_run
            assert any("has not finished (overlap=False)" in r.getMessage() and first in
                       r.getMessage() for r in caplog.records)
            release.set()
            wait_for(lambda: len(scheduled_ticks(app, "slow")) >= 2, RUNS_TIMEOUT,
                     "the next tick runs once the first has finished")
        finally:
            release.set()  # before the app drains its runs


def test_overlap_true_runs_beside_the_previous_run():
    app = SyncBlazing()
    release = threading.Event()

    @app.schedule(Period(seconds=1), overlap=True)
    @app.workflow
    async def slow() -> str:
        await asyncio.get_running_loop().run_in_executor(None, release.wait, RUNS_TIMEOUT)
        return "done"

    with app:
        try:
            wait_for(lambda: len([r for r in app.runs(workflow="slow")
                                  if r.status == "running"]) >= 2, RUNS_TIMEOUT,
                     "two runs at once")
            assert app.schedules()[0].skipped == 0
        finally:
            release.set()  # before the app drains its runs
