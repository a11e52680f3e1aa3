"""``blazing schedules`` (list), ``blazing schedules pause NAME`` and ``resume NAME``."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from blazing.cli.common import add_output_option, inspector, print_json, table
from blazing.schedules import ScheduleInfo


def _when(t: datetime | None) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def _row(s: ScheduleInfo) -> list[str]:
    last = f"{s.last_run} ({s.last_status or 'expired'})" if s.last_run else "-"
    return [s.name, s.workflow[:28], s.spec[:28], s.tz or "-", _when(s.next_tick), last,
            "yes" if s.paused else "no", str(s.fired), str(s.skipped), _when(s.seen_at)]


_HEADERS = ["name", "workflow", "spec", "tz", "next tick (UTC)", "last run", "paused",
            "fired", "skipped", "seen (UTC)"]


def cmd_list(args: argparse.Namespace) -> int:
    """Every schedule in the store."""
    with inspector(args) as ins:
        rows = ins.schedules()
    if args.output == "json":
        print_json([s.as_dict() for s in rows])
        return 0
    if not rows:
        print("no schedules (a schedule appears once a process serving the app starts)")
        return 0
    print(table([_row(s) for s in rows], _HEADERS))
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    """Pause or resume one schedule."""
    paused = args.action == "pause"
    with inspector(args) as ins:
        state = ins.pause_schedule(args.name, paused)
    if args.output == "json":
        print_json(state.as_dict())
        return 0
    print(f"{'paused' if paused else 'resumed'} {state.name}; next tick "
          f"{_when(state.next_tick)} UTC{' (will not run)' if paused else ''}")
    return 0


def register(sub: argparse._SubParsersAction, common: list[argparse.ArgumentParser]) -> None:
    """Add the commands to the console script."""
    s = sub.add_parser("schedules", parents=common,
                       help="schedules: list (name, spec, tz, next tick, last run, paused), "
                            "pause NAME, resume NAME")
    add_output_option(s)
    s.set_defaults(fn=cmd_list)
    actions = s.add_subparsers(dest="action", metavar="action")
    for action, what in (("pause", "stop a schedule's runs (its ticks pass without a run)"),
                         ("resume", "run a paused schedule again from its next tick")):
        a = actions.add_parser(action, parents=common, help=what)
        a.add_argument("name", help="the schedule's name (blazing schedules lists them)")
        add_output_option(a)
        a.set_defaults(fn=cmd_pause)
