"""The foreman charts: worker mix over time per machine (async vs blocking), queue
depth and oldest age per lane, the optimizer's decisions with their reasons and
urgency scores.

    python -m blazing.monitoring.monitor_foreman_charts [--since 15m]   (blazing charts)
        live in the terminal (plotext), redrawn every --refresh seconds
    ... --once                one terminal chart, printed (also when stdout is no terminal)
    ... --png FILE            a PNG (matplotlib)
    ... --html FILE           one self-contained page: the PNG inline and the decisions
    ... -o json               the data itself

Samples are a foreman's beats for an hour, then minute averages for a day: a window
longer than an hour reads the minute averages (so does --coarse). Exit codes: 0
done, 1 an error said on stderr (no samples in the window, Redis unreachable, a file
that cannot be written, a missing package), 2 bad usage, 3 a terminal smaller than
80×24 for the live view.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

from blazing.cli.common import EXIT_ERROR, inspector, print_json, store_label
from blazing.errors import ConfigurationError
from blazing.inspector import moment
from blazing.monitoring import chartdata
from blazing.monitoring.btop import EXIT_TERMINAL, too_small

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear the screen: one redraw of the live view
ALT_SCREEN, MAIN_SCREEN = "\x1b[?1049h", "\x1b[?1049l"  # the live view leaves no trace


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The charts' options (the store options and -o come from the console script)."""
    p.add_argument("--since", default="15m",
                   help="window: 30s, 15m, 2h, 1d before now (default 15m; over 1h reads "
                        "minute averages, kept a day)")
    p.add_argument("--coarse", action="store_true",
                   help="read the minute averages even for a window under an hour")
    p.add_argument("--png", metavar="FILE", help="write the charts as a PNG and exit")
    p.add_argument("--html", metavar="FILE",
                   help="write one self-contained HTML page (charts and decisions) and exit")
    p.add_argument("--once", action="store_true",
                   help="print the terminal charts once and exit")
    p.add_argument("--refresh", type=float, default=2.0,
                   help="seconds between redraws of the live view (default 2: a foreman's beat)")


def _read(args: argparse.Namespace, ins) -> chartdata.ChartData:  # noqa: ANN001 - Inspector
    since = moment(args.since)
    assert since is not None
    return chartdata.read(ins, since, True if args.coarse else None)


def _no_data(args: argparse.Namespace, data: chartdata.ChartData) -> int:
    print(f"blazing charts: no foreman samples since {data.since:%Y-%m-%d %H:%M:%S} UTC "
          f"(--since {args.since}) in {store_label(args)}: is a foreman running there? "
          "(samples are kept an hour, minute averages a day)", file=sys.stderr)
    return EXIT_ERROR


def run(args: argparse.Namespace) -> int:
    """``blazing charts``."""
    if args.refresh <= 0:
        raise ConfigurationError(f"--refresh {args.refresh:g}: give a positive number of seconds")
    moment(args.since)  # a bad --since is a usage error before anything is read
    title = f"Blazing Flow foreman charts: {store_label(args, url=False)}"
    files = args.png or args.html
    live = not (files or args.once or args.output == "json")
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    if live and not sys.stdout.isatty():
        live = False  # a pipe gets one chart, as with --once
    size = shutil.get_terminal_size((100, 30))
    if (live or (args.once and args.output != "json")) and \
            (why := too_small(size.columns, size.lines)):
        print(f"blazing charts: {why}", file=sys.stderr)
        return EXIT_TERMINAL
    with inspector(args) as ins:
        data = _read(args, ins)
        if data.empty:
            return _no_data(args, data)
        if args.output == "json":
            print_json(data.as_dict())
            return 0
        if files:
            return _write(args, data, title)
        from blazing.monitoring import charts_term

        if not live:
            sys.stdout.write(charts_term.render(data, size.columns, size.lines, colour,
                                                "blazing charts"))
            return 0
        sys.stdout.write(ALT_SCREEN)
        try:
            while True:
                size = shutil.get_terminal_size((100, 30))
                text = charts_term.render(data, size.columns, size.lines - 1, colour,
                                          "blazing charts (Ctrl-C quits)")
                sys.stdout.write(CLEAR + text)
                sys.stdout.flush()
                time.sleep(args.refresh)  # the live view's period: redraw, then wait
                data = _read(args, ins)
        except KeyboardInterrupt:
            return 0
        finally:
            sys.stdout.write(MAIN_SCREEN)
            sys.stdout.flush()


def _write(args: argparse.Namespace, data: chartdata.ChartData, title: str) -> int:
    from blazing.monitoring import charts_html, charts_png

    try:
        if args.png:
            with open(args.png, "wb") as f:
                f.write(charts_png.png(data, title))
            print(f"wrote {args.png}: {data.samples} samples, {len(data.decisions)} decisions "
                  f"({len(data.changes)} mix changes)")
        if args.html:
            with open(args.html, "w", encoding="utf-8") as f:
                f.write(charts_html.page(data, title))
            print(f"wrote {args.html}")
    except OSError as exc:
        print(f"blazing charts: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    from blazing.cli import main

    sys.exit(main(["charts", *sys.argv[1:]]))
