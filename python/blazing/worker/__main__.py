"""``python -m blazing.worker``: a worker process serving one app's steps and workflows.

    python -m blazing.worker --app module:attribute --type async|blocking [--concurrency N]

The app must use a Redis store (``redis_url=`` or ``BLAZING_REDIS_URL``). SIGTERM or
SIGINT drains the worker: it stops taking work, lets what runs finish for up to
``--drain-timeout`` seconds, then hands back at once what is still unfinished so
another worker takes it without waiting for the lease to lapse.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import signal
import sys
import threading
from typing import Any

from blazing.errors import ConfigurationError, ConnectorError
from blazing.settings import redact

log = logging.getLogger("blazing.worker")

EXIT_USAGE = 2
EXIT_APP = 3


def load_app(spec: str) -> Any:
    """Import ``module:attribute`` (the current directory is on the path)."""
    from blazing.app import BaseApp

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"--app {spec!r} must look like module:attribute")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    try:
        app = getattr(module, attr)
    except AttributeError:
        raise ConfigurationError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not isinstance(app, BaseApp):
        raise ConfigurationError(
            f"{spec} is a {type(app).__name__}, not a Blazing or SyncBlazing app")
    return app


async def beat_loop(runtime: Any, every: float, stop: threading.Event) -> None:
    """Print a heartbeat line for the foreman from the runtime's own loop.

    It runs on the event loop that runs the work, so a worker whose loop is
    stuck stops beating and the foreman replaces it.
    """
    while True:
        c = runtime.require_inspector().counters()
        current = next(iter(runtime.running), None) or \
            next(iter(dict(runtime.running_blocking)), None)  # a copy: threads change it
        # Per step name, for the foreman's per-step metrics: only the app's own
        # names, so the label values stay bounded whatever the store holds.
        steps = {name: {"ok": n["succeeded"], "failed": n["failed"], "retried": n["retried"],
                        "cancelled": n["cancelled"], "sum_ms": n["sum_ms"],
                        "buckets": n["buckets"]}
                 for name, n in c["by_name"].items() if name in runtime.registry}
        beat = {"state": "draining" if stop.is_set() else "serving",
                "running": runtime.active, "succeeded": c["succeeded"], "failed": c["failed"],
                "retried": c["retried"], "started": c["started"],
                "current": "/".join(current) if current else "",
                "dur_sum": c["duration_sum"], "dur_buckets": c["duration_buckets"],
                "steps": steps}
        sys.stdout.write("BLAZING-BEAT " + json.dumps(beat) + "\n")
        sys.stdout.flush()
        await asyncio.sleep(every)  # the beat period itself


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(prog="python -m blazing.worker",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--app", required=True, help="module:attribute of the Blazing app")
    ap.add_argument("--type", required=True, choices=("async", "blocking"),
                    help="async: workflows and async steps; blocking: sync and BLOCKING steps")
    ap.add_argument("--concurrency", type=int, default=None,
                    help="operations at once (default: async 64, blocking 4)")
    ap.add_argument("--drain-timeout", type=float, default=None,
                    help="seconds to let running work finish on SIGTERM (default: the app's)")
    args = ap.parse_args(argv)
    if args.concurrency is not None and args.concurrency < 1:
        ap.error("--concurrency must be at least 1")
    if args.drain_timeout is not None and args.drain_timeout < 0:
        ap.error("--drain-timeout must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run a worker until SIGTERM/SIGINT; return the exit code."""
    args = parse_args(argv)
    logging.basicConfig(level=os.environ.get("BLAZING_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s")
    try:
        app = load_app(args.app)
    except ConfigurationError as exc:
        print(f"blazing.worker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - any import failure of the user's app
        print(f"blazing.worker: cannot import app {args.app!r}: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return EXIT_APP
    settings = app.settings
    if not settings.redis_url:
        print("blazing.worker: a worker process needs a Redis store: pass redis_url= to the "
              "app or set BLAZING_REDIS_URL", file=sys.stderr)
        return EXIT_USAGE
    lane_async = args.type == "async"
    n = args.concurrency or (64 if lane_async else 4)
    settings.local_workers = True
    settings.async_workers, settings.async_concurrency = (1, n) if lane_async else (0, 0)
    settings.blocking_workers = 0 if lane_async else n
    drain = args.drain_timeout if args.drain_timeout is not None else settings.drain_timeout

    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("worker: %s received, draining (up to %.1f s)",
                 signal.Signals(signum).name, drain)
        stop.set()

    # A process-directed signal may land on any thread (the Go runtime has
    # several); CPython then only sets a flag, and a main thread asleep in a
    # lock wait would not see it. The wakeup fd makes whichever thread takes
    # the signal also wake the main thread, which waits in read() on it.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        app._runtime.start()
    except ConnectorError as exc:  # its message names the connector
        print(f"blazing.worker: cannot start: {exc}", file=sys.stderr)
        return EXIT_APP
    except Exception as exc:  # noqa: BLE001 - reported with the URL, then exit
        print(f"blazing.worker: cannot start on {redact(settings.redis_url)}: {exc}",
              file=sys.stderr)
        return EXIT_APP
    log.info("worker: serving %s (%s, %d at once) on %s", args.app, args.type, n,
             redact(settings.redis_url))
    print(f"blazing.worker ready pid={os.getpid()} type={args.type}", flush=True)
    beats = None
    if os.environ.get("BLAZING_WORKER_BEATS") == "1":
        beats = asyncio.run_coroutine_threadsafe(
            beat_loop(app._runtime, min(settings.heartbeat_seconds, 2.0), stop), app._runtime.loop)
    while not stop.is_set():
        os.read(wake_r, 64)  # returns when a signal arrives; its handler has run
    if beats is not None:
        beats.cancel()
    app._runtime.drain_and_stop(drain)
    log.info("worker: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
