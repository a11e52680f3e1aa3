"""Blazing Flow in the peers benchmark (runs with the project's own .venv).

Settings: two `python -m blazing.worker --type async` processes (event-loop workers, the
kind no-op and I/O steps are meant for) with their default concurrency; a client process
with `local_workers=False`; results stored in Redis as always (every run is durable; there
is no non-durable mode to pick). Default lease/heartbeat (30 s / 5 s).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from common import (
    RespClient,
    Workers,
    emit,
    measure_loss,
    parse_args,
    time_round_trips,
)

SYSTEM = "blazing"


def worker_argv(concurrency: int | None) -> Callable[[int], list[str]]:
    """Command line of one async worker process serving systems.blazing_tasks:app."""
    argv = [sys.executable, "-m", "blazing.worker", "--app", "systems.blazing_tasks:app",
            "--type", "async"]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    return lambda _index: argv


def queued(redis: RespClient, ns: str) -> int:
    """Operations waiting in the namespace's ready queues (sorted sets; what a worker takes)."""
    total = 0
    for key in redis.call("KEYS", f"{{{ns}}}:ready:*"):
        total += redis.call("ZCARD", key)
    return total


def rate_and_missing(handles: list[Any], t0: float) -> dict[str, float]:
    """Wait for every run (handle i returns i); per second since t0, and how many are wrong."""
    for h in handles:
        h.result_sync(timeout=600)
    elapsed = time.perf_counter() - t0
    missing = sum(1 for i, h in enumerate(handles) if h.result_sync(0) != i)
    return {"per_s": len(handles) / elapsed, "missing": missing}


def main() -> None:
    args = parse_args()
    ns = "peers" + uuid.uuid4().hex[:8]
    os.environ["BLAZING_REDIS_URL"] = args.redis
    os.environ["BLAZING_NAMESPACE"] = ns
    # Workers and this client must agree on the payload-signing secret.
    os.environ.setdefault("BLAZING_SECRET", "peers-benchmark")
    from systems.blazing_tasks import app

    redis = RespClient(args.redis)
    # The loss workload runs one task at a time per worker process for every system, so
    # that its 2,000 tasks take long enough for the kills to land mid-task.
    concurrency = 1 if args.workload == "loss" else None
    workers = Workers(worker_argv(concurrency), env={"BLAZING_REDIS_URL": args.redis,
                                        "BLAZING_NAMESPACE": ns,
                                        "BLAZING_SECRET": os.environ["BLAZING_SECRET"]})
    n = args.n
    try:
        app._ensure_started()
        if args.workload == "enqueue":
            # A submission is handed to the engine's command loop and written to Redis
            # in batches; the clock stops when all N are in Redis's ready list.
            t0 = time.perf_counter()
            for i in range(n):
                app.noop(i)
            while queued(redis, ns) < n:
                time.sleep(0.0005)  # polling Redis from outside: nothing to wait on
            emit(SYSTEM, args.variant, args.workload, per_s=n / (time.perf_counter() - t0))
        elif args.workload == "drain":
            sentinel = app.noop(-1)
            handles = [app.noop(i) for i in range(n)]
            while queued(redis, ns) < n + 1:
                time.sleep(0.001)
            workers.start()
            sentinel.result_sync(timeout=120)
            t0 = time.perf_counter()
            emit(SYSTEM, args.variant, args.workload, **rate_and_missing(handles, t0))
        elif args.workload == "latency":
            workers.start()
            figures = time_round_trips(lambda i: app.noop(i).result_sync(timeout=60), n)
            emit(SYSTEM, args.variant, args.workload, **figures)
        elif args.workload == "pipelines":
            workers.start()
            for i in range(20):
                app.three_steps(i).result_sync(timeout=120)
            t0 = time.perf_counter()
            handles = [app.three_steps(i) for i in range(n)]
            emit(SYSTEM, args.variant, args.workload, **rate_and_missing(handles, t0))
        elif args.workload == "loss":
            workers.start()
            handles = [app.sleepy(i) for i in range(n)]
            measure_loss(SYSTEM, args, workers, redis)
            del handles
    finally:
        app.stop_sync()
        workers.stop()
        redis.close()


if __name__ == "__main__":
    main()
