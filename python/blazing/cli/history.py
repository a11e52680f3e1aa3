"""``blazing runs``, ``show``, ``stats`` and ``breadcrumbs``: what ran, and how."""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime

from blazing.cli.common import add_output_option, inspector, ms, print_json, table
from blazing.monitoring.render import event_line, timeline_tree
from blazing.records import OperationRecord

FOLLOW_EVERY = 0.5  # seconds between reads of a followed timeline


def _when(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def _took(r: OperationRecord) -> str:
    return ms(r.duration * 1000) if r.duration is not None else "-"


def cmd_runs(args: argparse.Namespace) -> int:
    """Recent runs, newest first."""
    with inspector(args) as ins:
        rows = ins.runs(status=args.status, workflow=args.workflow, since=args.since,
                        limit=args.limit)
    if args.output == "json":
        print_json([r.as_dict() for r in rows])
        return 0
    if not rows:
        print("no runs")
        return 0
    print(table([[r.unit_id, r.name[:28], r.status, _when(r.created_at), _took(r),
                  str(r.attempts)] for r in rows],
                ["unit_id", "name", "status", "created (UTC)", "took", "attempts"]))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Every operation of one run."""
    with inspector(args) as ins:
        ops = ins.history(args.unit_id)
    if args.output == "json":
        print_json([o.as_dict(values=args.values) for o in ops])
        return 0
    rows = []
    for o in ops:
        row = ["  " * o.depth + o.path, o.name[:28], o.status, str(o.attempts), o.worker or "-",
               _when(o.started_at), _took(o),
               (f"{o.error_type}: {o.error_message}" if o.error_type else "")[:80]]
        if args.values:
            d = o.as_dict(values=True)
            row += [d["args"] or "-", d["result"] or "-"]
        rows.append(row)
    headers = ["path", "name", "status", "attempts", "worker", "started (UTC)", "took", "error"]
    if args.values:
        headers += ["args", "result"]
    print(f"run {args.unit_id}")
    print(table(rows, headers))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """Per workflow and step: counts, error rate, p50/p95/p99."""
    with inspector(args) as ins:
        stats = ins.stats(args.since)
    if args.output == "json":
        print_json({"since": args.since,
                    "steps": {n: s.as_dict() for n, s in stats["steps"].items()},
                    "lanes": {n: s.as_dict() for n, s in stats["lanes"].items()}})
        return 0
    headers = ["name", "count", "ok", "failed", "retried", "errors", "p50", "p95", "p99"]

    def rows(group: dict) -> list[list[str]]:
        return [[n[:32], str(s.count), str(s.succeeded), str(s.failed), str(s.retried),
                 f"{100 * s.error_rate:.1f}%", ms(s.p50_ms), ms(s.p95_ms), ms(s.p99_ms)]
                for n, s in group.items()]

    print(f"since {args.since}:")
    if not stats["steps"]:
        print("nothing ran")
        return 0
    print(table(rows(stats["steps"]), headers))
    print()
    print(table(rows(stats["lanes"]), ["lane", *headers[1:]]))
    return 0


def cmd_breadcrumbs(args: argparse.Namespace) -> int:
    """A run's timeline, as a tree; --follow streams it until the run ends."""
    with inspector(args) as ins:
        if args.follow:
            return _follow(ins, args)
        timeline = ins.breadcrumbs(args.unit_id)
        ops = ins.history(args.unit_id)
    if args.output == "json":
        print_json({"unit_id": args.unit_id, "dropped": timeline.dropped,
                    "events": [e.as_dict() for e in timeline.events]})
        return 0
    if timeline.dropped:
        print(f"({timeline.dropped} older breadcrumbs were dropped: a run keeps its newest)")
    print("\n".join(timeline_tree(ops, timeline.events)))
    return 0


def _follow(ins, args: argparse.Namespace) -> int:  # noqa: ANN001 - an Inspector
    """Print events as they come (a flat stream), until the run has ended. Events
    are told apart by content, not position: one may sort before those already shown
    (a record read later than a breadcrumb), and old ones may be dropped."""
    shown: set[tuple[object, ...]] = set()
    start: datetime | None = None
    names: dict[str, str] = {}
    while True:
        ops = ins.history(args.unit_id)
        names = {o.path: o.name for o in ops}
        events = ins.breadcrumbs(args.unit_id).events
        if events and start is None:
            start = events[0].at
        for e in events:
            key = (e.at, e.path, e.kind, e.message)
            if key in shown:
                continue
            shown.add(key)
            line = {"unit_id": args.unit_id, **e.as_dict()} if args.output == "json" else None
            if line is not None:  # one JSON object per line, as it comes
                print(json.dumps(line, default=str), flush=True)
            else:
                print(f"{names.get(e.path, '?')} {e.path}  {event_line(e, start or e.at)}",
                      flush=True)
        root = next((o for o in ops if o.path == "0"), None)
        if root is not None and root.status in ("succeeded", "failed", "cancelled"):
            return 0
        time.sleep(FOLLOW_EVERY)  # following another process's run: read it again


def register(sub: argparse._SubParsersAction, common: list[argparse.ArgumentParser]) -> None:
    """Add the commands to the console script."""
    r = sub.add_parser("runs", parents=common, help="recent runs, newest first")
    r.add_argument("--status", choices=("pending", "running", "succeeded", "failed", "cancelled"))
    r.add_argument("--workflow", help="only runs of this workflow (or step) name")
    r.add_argument("--since", help="only runs started since: 30s, 15m, 2h, 1d")
    r.add_argument("--limit", type=int, default=50)
    add_output_option(r)
    r.set_defaults(fn=cmd_runs)
    s = sub.add_parser("show", parents=common, help="every operation of one run")
    s.add_argument("unit_id")
    s.add_argument("--values", action="store_true", help="show arguments and results, shortened")
    add_output_option(s)
    s.set_defaults(fn=cmd_show)
    t = sub.add_parser("stats", parents=common,
                       help="per workflow and step: counts, error rate, p50/p95/p99 duration")
    t.add_argument("--since", default="1h", help="30s, 15m, 2h, 1d (default 1h; a day is kept)")
    add_output_option(t)
    t.set_defaults(fn=cmd_stats)
    b = sub.add_parser("breadcrumbs", parents=common, help="a run's timeline, as a tree")
    b.add_argument("unit_id")
    b.add_argument("--follow", "-f", action="store_true",
                   help="stream the timeline of a running run until it ends")
    add_output_option(b)
    b.set_defaults(fn=cmd_breadcrumbs)
