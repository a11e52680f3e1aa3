"""``blazing failed`` and ``blazing requeue``: the dead-letter list."""

from __future__ import annotations

import argparse

from blazing.cli.common import add_output_option, inspector, print_json, table


def cmd_failed(args: argparse.Namespace) -> int:
    """List failed runs, newest first."""
    with inspector(args) as ins:
        rows = ins.failed_runs(args.limit, args.offset)
    if args.output == "json" or args.json:
        print_json([r.as_dict() for r in rows])
        return 0
    if not rows:
        print("no failed runs")
        return 0
    print(table([[r.unit_id, r.name[:24],
                  r.finished_at.strftime("%Y-%m-%d %H:%M:%S") if r.finished_at else "-",
                  str(r.attempts),
                  (f"{r.error_type}: {r.error_message}" if r.error_type else "")[:100]]
                 for r in rows], ["unit_id", "name", "finished (UTC)", "attempts", "error"]))
    return 0


def cmd_requeue(args: argparse.Namespace) -> int:
    """Run a failed run again."""
    with inspector(args) as ins:
        ins.requeue(args.unit_id)
    print(f"requeued {args.unit_id}")
    return 0


def register(sub: argparse._SubParsersAction, common: list[argparse.ArgumentParser]) -> None:
    """Add the commands to the console script."""
    f = sub.add_parser("failed", parents=common,
                       help="list failed runs (the dead-letter list), newest first")
    f.add_argument("--limit", type=int, default=50)
    f.add_argument("--offset", type=int, default=0)
    f.add_argument("--json", action="store_true", help="same as -o json")
    add_output_option(f)
    f.set_defaults(fn=cmd_failed)
    r = sub.add_parser("requeue", parents=common,
                       help="run a failed run again (succeeded steps are replayed)")
    r.add_argument("unit_id")
    r.set_defaults(fn=cmd_requeue)
