"""The ``blazing`` console script: operator commands against a Redis store.

    blazing [--redis-url URL] [--namespace NS] failed [--limit N] [--offset N] [--json]
    blazing [--redis-url URL] [--namespace NS] requeue UNIT_ID

It reads through an :class:`~blazing.inspector.Inspector` over a session of its
own: no runtime, no workers, no event loop.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from blazing._native import Session
from blazing.errors import BlazingError, ConfigurationError
from blazing.inspector import Inspector
from blazing.settings import redact, resolve


@contextmanager
def _inspector(args: argparse.Namespace) -> Iterator[Inspector]:
    settings = resolve(redis_url=args.redis_url, namespace=args.namespace, local_workers=False)
    if not settings.redis_url:
        raise ConfigurationError("pass --redis-url or set BLAZING_REDIS_URL")
    session = Session({**settings.store_config(), "async": 0, "blocking": 0,
                       "inbox": f"cli-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"})
    try:
        yield Inspector(session)
    finally:
        session.close()


def cmd_failed(args: argparse.Namespace) -> int:
    """List the dead letters."""
    with _inspector(args) as inspector:
        rows = inspector.failed_runs(args.limit, args.offset)
    if args.json:
        print(json.dumps([{**r.__dict__,
                           "created_at": r.created_at and r.created_at.isoformat(),
                           "started_at": r.started_at and r.started_at.isoformat(),
                           "finished_at": r.finished_at and r.finished_at.isoformat()}
                          for r in rows], indent=2))
        return 0
    if not rows:
        print("no failed runs")
        return 0
    print(f"{'unit_id':32}  {'name':24}  {'finished (UTC)':19}  attempts  error")
    for r in rows:
        when = r.finished_at.strftime("%Y-%m-%d %H:%M:%S") if r.finished_at else "-"
        err = f"{r.error_type}: {r.error_message}" if r.error_type else ""
        print(f"{r.unit_id:32}  {r.name[:24]:24}  {when:19}  {r.attempts:8}  {err[:120]}")
    return 0


def cmd_requeue(args: argparse.Namespace) -> int:
    """Requeue one failed run."""
    with _inspector(args) as inspector:
        inspector.requeue(args.unit_id)
    print(f"requeued {args.unit_id}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    ap = argparse.ArgumentParser(prog="blazing", description="Blazing Flow operator commands")
    ap.add_argument("--redis-url", default=None, help="default: $BLAZING_REDIS_URL")
    ap.add_argument("--namespace", default=None, help="default: $BLAZING_NAMESPACE or blazing")
    sub = ap.add_subparsers(dest="command", required=True)
    f = sub.add_parser("failed", help="list failed runs (the dead-letter list), newest first")
    f.add_argument("--limit", type=int, default=50)
    f.add_argument("--offset", type=int, default=0)
    f.add_argument("--json", action="store_true")
    f.set_defaults(fn=cmd_failed)
    r = sub.add_parser("requeue", help="run a failed run again (succeeded steps are replayed)")
    r.add_argument("unit_id")
    r.set_defaults(fn=cmd_requeue)
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except BlazingError as exc:
        url = args.redis_url and redact(args.redis_url)
        print(f"blazing {args.command}: {exc}" + (f" ({url})" if url else ""), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
