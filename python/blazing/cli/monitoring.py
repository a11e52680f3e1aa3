"""``blazing btop``: the dashboard.

Their code is in :mod:`blazing.monitoring`; the packages of the ``monitoring`` extra
(textual, plotext, matplotlib) are imported only when a command draws with them.
"""

from __future__ import annotations

import argparse

from blazing.cli.common import add_output_option


def cmd_btop(args: argparse.Namespace) -> int:
    """The terminal dashboard."""
    from blazing.monitoring import btop

    return btop.run(args)


def register(sub: argparse._SubParsersAction, common: list[argparse.ArgumentParser]) -> None:
    """Add the commands to the console script."""
    from blazing.monitoring import btop

    b = sub.add_parser("btop", parents=common,
                       help="terminal dashboard: lanes, machines, failures, decisions")
    btop.add_arguments(b)
    add_output_option(b)
    b.set_defaults(fn=cmd_btop)
