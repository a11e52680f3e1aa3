"""btop: a terminal dashboard of a namespace — lanes, machines, failures, decisions.

    python -m blazing.monitoring.btop [--refresh 1] [--filter NAME]   (blazing btop)
    python -m blazing.monitoring.btop --once [-o json]                one frame as text
    python -m blazing.monitoring.btop --once --run UNIT_ID           a run's breadcrumbs

Exit codes: 0 done (q, or a frame printed), 1 an error said on stderr (Redis
unreachable, an unknown run, a missing package), 2 bad usage, 3 no terminal to draw
in, or one smaller than 80×24.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from blazing.cli.common import inspector, print_json, store_label
from blazing.errors import ConfigurationError
from blazing.monitoring import render
from blazing.monitoring.deps import need
from blazing.monitoring.frame import FrameSource

EXIT_TERMINAL = 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    """btop's options (the store options and -o come from the console script)."""
    p.add_argument("--refresh", type=float, default=1.0,
                   help="seconds between frames (default 1)")
    p.add_argument("--once", action="store_true",
                   help="print one frame as plain text (or JSON with -o json) and exit")
    p.add_argument("--filter", default="", metavar="NAME",
                   help="show only failures whose workflow or step name contains NAME")
    p.add_argument("--run", metavar="UNIT_ID",
                   help="a run's breadcrumbs: with --once printed, else opened at start")
    p.add_argument("--limit", type=int, default=10,
                   help="rows per section with --once (default 10)")


def too_small(width: int, height: int | None) -> str | None:
    """Why a terminal of that size will not do, or None."""
    if width < render.MIN_WIDTH or (height is not None and height < render.MIN_HEIGHT):
        size = f"{width}×{height}" if height is not None else f"{width} columns"
        return (f"the terminal is {size}; btop needs at least "
                f"{render.MIN_WIDTH}×{render.MIN_HEIGHT}")
    return None


def run(args: argparse.Namespace) -> int:
    """``blazing btop``."""
    if args.refresh <= 0:
        raise ConfigurationError(f"--refresh {args.refresh:g}: give a positive number of seconds")
    if args.limit < 1:
        raise ConfigurationError(f"--limit {args.limit}: give a positive number of rows")
    if args.once:
        return once(args)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("blazing btop: draws in a terminal; use --once for one frame as plain text",
              file=sys.stderr)
        return EXIT_TERMINAL
    size = os.get_terminal_size(sys.stdout.fileno())
    if why := too_small(size.columns, size.lines):
        print(f"blazing btop: {why}: enlarge it, or use --once for plain text",
              file=sys.stderr)
        return EXIT_TERMINAL
    need("textual", "blazing btop")
    need("rich", "blazing btop")
    from blazing.monitoring.tui import BtopApp  # textual, only now that it is needed

    with inspector(args) as ins:
        source = FrameSource(ins)
        source.frame()  # an unreachable store is an error here, not a dashboard of errors
        app = BtopApp(source, refresh=args.refresh, where=store_label(args),
                      pattern=args.filter, open_run=args.run)
        code = app.run()
    return code or 0


def once(args: argparse.Namespace) -> int:
    """One frame, or one run's breadcrumbs, printed."""
    # Width: $COLUMNS, else the terminal's, else 100 (a pipe): the frame is laid out
    # for it, and below 80 columns it is not readable.
    width = shutil.get_terminal_size((100, 24)).columns
    if args.output == "text" and (why := too_small(width, None)):
        print(f"blazing btop: {why} (set COLUMNS=80 or more)", file=sys.stderr)
        return EXIT_TERMINAL
    with inspector(args) as ins:
        source = FrameSource(ins)
        if args.run:
            ops, timeline = source.run_detail(args.run)
            if args.output == "json":
                print_json({"unit_id": args.run, "dropped": timeline.dropped,
                            "operations": [o.as_dict() for o in ops],
                            "events": [e.as_dict() for e in timeline.events]})
            else:
                print("\n".join(render.run_lines(args.run, ops, timeline)))
            return 0
        frame = source.frame(args.filter)
    if args.output == "json":
        print_json(frame.as_dict())
    else:
        sys.stdout.write(render.frame_text(frame, width, store_label(args),
                                           limit=args.limit))
    return 0


if __name__ == "__main__":
    from blazing.cli import main

    sys.exit(main(["btop", *sys.argv[1:]]))
