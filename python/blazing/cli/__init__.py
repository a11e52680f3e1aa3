"""The ``blazing`` console script: operator commands against a Redis store.

    blazing runs [--status S] [--workflow W] [--since 1h] [--limit N] [-o json]
    blazing show UNIT_ID [--values] [-o json]
    blazing stats [--since 1h] [-o json]
    blazing breadcrumbs UNIT_ID [--follow] [-o json]
    blazing workers [-o json]
    blazing failed [--limit N] [--offset N] [-o json]
    blazing requeue UNIT_ID
    blazing btop [--refresh 1] [--filter NAME] [--once [-o json]] [--run UNIT_ID]
    blazing charts [--since 15m] [--coarse] [--png FILE] [--html FILE] [--once] [-o json]
    blazing schedules [-o json] | schedules pause NAME | schedules resume NAME

Every command takes --redis-url (or BLAZING_REDIS_URL) and --namespace (or
BLAZING_NAMESPACE). They read through an inspector over a session of their
own: no runtime, no workers, no event loop.
"""

from __future__ import annotations

import argparse
import sys

from blazing.cli import deadletters, fleet, history, monitoring, schedules
from blazing.cli.common import EXIT_ERROR, add_store_options
from blazing.errors import BlazingError
from blazing.settings import redact


def parser() -> argparse.ArgumentParser:
    """The whole command line."""
    common = argparse.ArgumentParser(add_help=False)
    add_store_options(common)
    ap = argparse.ArgumentParser(prog="blazing", description="Blazing Flow operator commands",
                                 parents=[common])
    sub = ap.add_subparsers(dest="command", required=True, metavar="command")
    for module in (history, fleet, deadletters, monitoring, schedules):
        module.register(sub, [common])
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except (BlazingError, LookupError) as exc:
        url = getattr(args, "redis_url", None)
        where = f" ({redact(url)})" if url else ""
        print(f"blazing {args.command}: {exc}{where}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
