"""``blazing worker`` and ``blazing foreman``: the processes that run an app's work.

    blazing worker --app module:attribute [--type async|blocking|both] [--concurrency N]
    blazing foreman --app module:attribute --redis-url URL [flags]  # the foreman's own flags

``blazing worker --type async`` (or ``blocking``) is ``python -m blazing.worker`` in this
process. ``--type both`` (the default) starts one worker process per lane and supervises
them simply: SIGTERM or SIGINT is passed to both, which drain; a second one kills them;
if one exits on its own, the other is drained and the command exits with the first one's
code, so whatever runs the command (systemd, Kubernetes) restarts the pair. It restarts
nothing itself and never changes the mix: that is the foreman's job.
``blazing foreman`` hands every argument after it to the foreman binary, exactly as
``python -m blazing.foreman`` does.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
from typing import Any

log = logging.getLogger("blazing.worker")

LANES = ("async", "blocking")


def store_env(args: argparse.Namespace) -> dict[str, str]:
    """This environment, with --redis-url and --namespace (if given) as the variables
    the app and the foreman read."""
    env = dict(os.environ)
    if getattr(args, "redis_url", None):
        env["BLAZING_REDIS_URL"] = args.redis_url
    if getattr(args, "namespace", None):
        env["BLAZING_NAMESPACE"] = args.namespace
    return env


def worker_argv(args: argparse.Namespace, lane: str) -> list[str]:
    """The ``python -m blazing.worker`` arguments of one lane."""
    argv = ["--app", args.app, "--type", lane]
    if args.concurrency is not None:
        argv += ["--concurrency", str(args.concurrency)]
    if args.drain_timeout is not None:
        argv += ["--drain-timeout", str(args.drain_timeout)]
    return argv


def cmd_worker(args: argparse.Namespace) -> int:
    """Run a worker of one lane here, or one process per lane under a supervisor."""
    if args.concurrency is not None and args.concurrency < 1:
        print("blazing worker: --concurrency must be at least 1", file=sys.stderr)
        return 2
    if args.drain_timeout is not None and args.drain_timeout < 0:
        print("blazing worker: --drain-timeout must not be negative", file=sys.stderr)
        return 2
    module, sep, attribute = args.app.partition(":")
    if not (module and sep and attribute):  # said once here, not once per child
        print(f"blazing worker: --app {args.app!r} must look like module:attribute",
              file=sys.stderr)
        return 2
    if args.type != "both":
        from blazing.worker.__main__ import main as worker_main

        os.environ.update(store_env(args))
        return worker_main(worker_argv(args, args.type))
    return supervise([[sys.executable, "-m", "blazing.worker", *worker_argv(args, lane)]
                      for lane in LANES], store_env(args))


def supervise(commands: list[list[str]], env: dict[str, str]) -> int:
    """Run ``commands`` as child processes until all have exited; return the first exit
    code that is not 0 (0 if none)."""
    logging.basicConfig(level=os.environ.get("BLAZING_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s")
    signals_seen = 0
    procs: list[subprocess.Popen[bytes]] = []

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal signals_seen
        signals_seen += 1
        name = signal.Signals(signum).name
        for p in procs:
            if p.returncode is None:
                if signals_seen == 1:
                    p.send_signal(signum)
                else:
                    p.kill()
        log.info("worker: %s received, %s", name,
                 "passed to the workers, which drain" if signals_seen == 1 else
                 "again: workers killed")

    # Handlers first: a signal while the children start still reaches each one started.
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for cmd in commands:
            procs.append(subprocess.Popen(cmd, env=env))
        if signals_seen:  # one arrived before every child existed: pass it to all
            for p in procs:
                p.send_signal(signal.SIGTERM)
        log.info("worker: supervising %s", ", ".join(
            f"{cmd[cmd.index('--type') + 1]} worker pid {p.pid}"
            for cmd, p in zip(commands, procs, strict=True)))
        codes: list[int] = []
        running = list(procs)
        while running:
            pid, status = os.wait()  # retried after a signal handler runs (PEP 475)
            child = next((p for p in running if p.pid == pid), None)
            if child is None:
                continue
            child.returncode = os.waitstatus_to_exitcode(status)
            running.remove(child)
            codes.append(child.returncode)
            if running and not signals_seen:
                log.warning("worker: pid %d exited on its own with code %d; draining the "
                            "others", pid, child.returncode)
                signals_seen = 1
                for p in running:
                    p.send_signal(signal.SIGTERM)
        return next((c if c > 0 else 128 - c for c in codes if c != 0), 0)
    finally:
        for p in procs:
            if p.returncode is None:  # only when this function itself failed
                p.kill()
                p.wait(timeout=10)
        for s, handler in previous.items():
            signal.signal(s, handler)


def cmd_foreman(args: argparse.Namespace) -> int:
    """Replace this process with the foreman, with the arguments after ``foreman``."""
    from blazing.foreman import exec_foreman

    exec_foreman(args.foreman_args, store_env(args))


def register(sub: argparse._SubParsersAction, common: list[argparse.ArgumentParser]) -> None:
    """Add the commands to the console script."""
    w = sub.add_parser(
        "worker", parents=common,
        help="run workers of an app: one lane here, or one process per lane (--type both)",
        description="Run workers serving an app's steps and workflows (it needs a Redis "
                    "store). --type both starts one process per lane and passes signals on.")
    w.add_argument("--app", required=True, help="module:attribute of the Blazing app")
    w.add_argument("--type", choices=("async", "blocking", "both"), default="both",
                   help="async: workflows and async steps; blocking: sync and BLOCKING "
                        "steps; both (default): one process of each")
    w.add_argument("--concurrency", type=int, default=None,
                   help="operations at once per worker (default: async 64, blocking 4)")
    w.add_argument("--drain-timeout", type=float, default=None,
                   help="seconds to let running work finish on SIGTERM (default: the app's)")
    w.set_defaults(fn=cmd_worker)
    # Everything after `foreman` is the foreman's: no option of ours may take any of it.
    f = sub.add_parser("foreman", add_help=False, prefix_chars="\0",
                       help="run this machine's foreman (blazing foreman --help: its flags)")
    f.add_argument("foreman_args", nargs=argparse.REMAINDER)
    f.set_defaults(fn=cmd_foreman)
