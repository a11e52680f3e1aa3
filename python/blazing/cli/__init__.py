"""The ``blazing`` console script: the processes that run an app, and operator commands
against a Redis store.

    blazing --version
    blazing worker --app module:attribute [--type async|blocking|both] [--concurrency N]
    blazing foreman --app module:attribute --redis-url URL [the foreman's flags]
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
BLAZING_NAMESPACE). The operator commands read through an inspector over a
session of their own: no runtime, no workers, no event loop.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import blazing
from blazing.cli import deadletters, fleet, history, monitoring, processes, schedules
from blazing.cli.common import EXIT_ERROR, add_store_options
from blazing.errors import BlazingError
from blazing.settings import redact


def version_text() -> str:
    """This package's version and the Go core's, as ``blazing --version`` prints them."""
    from blazing._native import version

    try:
        core = version()
    except BlazingError as exc:  # the package is there, its Go core is not
        core = f"Go core unavailable: {exc}"
    return f"blazing {blazing.__version__} ({core}; Python {sys.version.split()[0]})"


class VersionAction(argparse.Action):
    """``--version``: print :func:`version_text` and exit 0 (the core is loaded only then)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(version_text())
        parser.exit()


def parser() -> argparse.ArgumentParser:
    """The whole command line."""
    common = argparse.ArgumentParser(add_help=False)
    add_store_options(common)
    ap = argparse.ArgumentParser(prog="blazing", parents=[common],
                                 description="Blazing Flow: run an app's workers and "
                                             "foreman, and inspect its store")
    ap.add_argument("--version", action=VersionAction,
                    help="print the package's and the Go core's versions and exit")
    sub = ap.add_subparsers(dest="command", required=True, metavar="command")
    for module in (processes, history, fleet, deadletters, monitoring, schedules):
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
