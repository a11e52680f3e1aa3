"""``blazing btop`` and ``blazing charts``: the dashboard and the foreman charts.

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


def cmd_charts(args: argparse.Namespace) -> int:
    """The foreman charts: live in the terminal, or a PNG or an HTML page."""
    from blazing.monitoring import monitor_foreman_charts

    return monitor_foreman_charts.run(args)


def register(sub: argparse._SubParsersAction, common: list[argparse.ArgumentParser]) -> None:
    """Add the commands to the console script."""
    from blazing.monitoring import btop, monitor_foreman_charts

    b = sub.add_parser("btop", parents=common,
                       help="terminal dashboard: lanes, machines, failures, decisions")
    btop.add_arguments(b)
    add_output_option(b)
    b.set_defaults(fn=cmd_btop)
    c = sub.add_parser("charts", parents=common,
                       help="foreman charts: worker mix, queues, the optimizer's decisions")
    monitor_foreman_charts.add_arguments(c)
    add_output_option(c)
    c.set_defaults(fn=cmd_charts)
