"""``blazing workers``: the machines, their foremen and workers, and what each runs."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from blazing.cli.common import add_output_option, inspector, print_json, table


def _age(t: str | datetime | None) -> str:
    if not t:
        return "-"
    when = t if isinstance(t, datetime) else datetime.fromisoformat(str(t))
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    secs = (datetime.now(timezone.utc) - when).total_seconds()
    return f"{secs:.0f}s ago" if secs < 120 else f"{secs / 60:.0f}m ago"


def cmd_workers(args: argparse.Namespace) -> int:
    """The fleet, as the foremen last recorded it."""
    with inspector(args) as ins:
        foremen = ins.fleet()
    if args.output == "json":
        print_json(foremen)
        return 0
    if not foremen:
        print("no foremen on this namespace (workers started without one are not listed)")
        return 0
    for f in foremen:
        print(f"{f['host']}  foreman {f['id']} (pid {f['pid']}), beat {_age(f['beat'])}, "
              f"target {f['target_async']} async + {f['target_blocking']} blocking, "
              f"{f['restarts']} restarts")
        rows = [[w["id"], w["lane"], str(w["pid"]), w["state"], str(w["running"]),
                 str(w["succeeded"]), str(w["failed"]), w["current"] or "-"]
                for w in f["workers"] or []]
        if rows:
            print(table(rows, ["  worker", "lane", "pid", "state", "running", "succeeded",
                               "failed", "running now"]))
        print()
    return 0


def register(sub: argparse._SubParsersAction, common: list[argparse.ArgumentParser]) -> None:
    """Add the command to the console script."""
    w = sub.add_parser("workers", parents=common,
                       help="machines, foremen and workers: state and what each runs")
    add_output_option(w)
    w.set_defaults(fn=cmd_workers)
