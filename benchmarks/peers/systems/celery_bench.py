"""Celery in the peers benchmark (runs with .venvs/celery/bin/python).

Workers: two `celery worker --pool=solo` processes, each taking one task at a time in its
main process, `--without-gossip --without-mingle --without-heartbeat` (Celery's advice for
lower broker traffic when the cluster features are not used), log level WARNING (no line per
task). Two solo workers rather than one prefork worker with `-c 2`: the same two processes
both fetch and execute, with no parent-to-child hand-off per task (which costs more than a
no-op task itself), and a SIGKILL takes a whole worker, as for every other system. App
settings are in systems/celery_tasks.py; the "durable" variant adds late acknowledgement.

Producer: `.delay()` per task, `AsyncResult.get()` for a round trip (the Redis backend
waits on pub/sub), `chain(noop.s(i), noop.s(), noop.s())` per pipeline. Completion of many
tasks is watched on their result keys (`celery-task-meta-<id>`) in Redis.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable

from common import (
    Workers,
    emit,
    measure_loss,
    parse_args,
    progress,
    time_round_trips,
    wait_keys_exist,
)

SYSTEM = "celery"
RESULT_PREFIX = "celery-task-meta-"


def worker_argv(index: int) -> list[str]:
    """Command line of worker `index`: a solo-pool Celery worker with a unique node name."""
    return [sys.executable, "-m", "celery", "-A", "systems.celery_tasks", "worker",
            "--pool=solo", "--loglevel=WARNING", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "-n", f"w{index}@%h"]


def wait_workers_ready(app: object, count: int, limit: float = 120.0) -> None:
    """Block until `count` workers answer a remote-control ping."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        replies = app.control.ping(timeout=0.5) or []  # type: ignore[attr-defined]
        if len(replies) >= count:
            return
    raise RuntimeError(f"fewer than {count} Celery workers answered within {limit:.0f} s")


def count_good(redis: object, ids: list[str], expect: Callable[[int], object]) -> int:
    """How many of the tasks `ids` (task i expected to return expect(i)) stored SUCCESS."""
    good = 0
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        values = redis.mget([RESULT_PREFIX + t for t in chunk])  # type: ignore[attr-defined]
        for i, raw in enumerate(values, start):
            if raw is None:
                continue
            meta = json.loads(raw)
            good += meta.get("status") == "SUCCESS" and meta.get("result") == expect(i)
    return good


def main() -> None:
    args = parse_args()
    # The app module reads these at import, in this process and (inherited) in the workers.
    os.environ["PEERS_REDIS_URL"] = args.redis
    os.environ["PEERS_VARIANT"] = args.variant
    import redis
    from celery import chain

    from systems.celery_tasks import app, noop, sleepy

    r = redis.Redis.from_url(args.redis)
    workers = Workers(worker_argv)
    n = args.n
    try:
        if args.workload == "enqueue":
            noop.delay(-1)  # connect the producer and result consumer before the clock
            t0 = time.perf_counter()
            for i in range(n):
                noop.delay(i)
            emit(SYSTEM, args.variant, args.workload, per_s=n / (time.perf_counter() - t0))
        elif args.workload == "drain":
            sentinel = noop.delay(-1)
            ids = [noop.delay(i).id for i in range(n)]
            workers.start()
            if wait_keys_exist(r, [RESULT_PREFIX + sentinel.id], timeout=120, interval=0.001):
                raise RuntimeError("the sentinel task did not finish within 120 s")
            t0 = time.perf_counter()
            done = not wait_keys_exist(r, [RESULT_PREFIX + t for t in ids])
            elapsed = time.perf_counter() - t0
            missing = n - count_good(r, ids, lambda i: i)
            if not done:
                progress(f"celery drain: timed out with {missing} of {n} results missing")
            emit(SYSTEM, args.variant, args.workload, per_s=n / elapsed, missing=missing)
        elif args.workload == "latency":
            workers.start()
            wait_workers_ready(app, workers.count)
            figures = time_round_trips(lambda i: noop.delay(i).get(timeout=60), n)
            emit(SYSTEM, args.variant, args.workload, **figures)
        elif args.workload == "pipelines":
            workers.start()
            wait_workers_ready(app, workers.count)
            for i in range(20):
                chain(noop.s(i), noop.s(), noop.s()).apply_async().get(timeout=120)
            t0 = time.perf_counter()
            # A chain's AsyncResult is its last task's; its result key marks the pipeline done.
            ids = [chain(noop.s(i), noop.s(), noop.s()).apply_async().id for i in range(n)]
            done = not wait_keys_exist(r, [RESULT_PREFIX + t for t in ids])
            elapsed = time.perf_counter() - t0
            missing = n - count_good(r, ids, lambda i: i)
            if not done:
                progress(f"celery pipelines: timed out with {missing} of {n} results missing")
            emit(SYSTEM, args.variant, args.workload, per_s=n / elapsed, missing=missing)
        elif args.workload == "loss":
            workers.start()
            wait_workers_ready(app, workers.count)
            for i in range(n):
                sleepy.delay(i)
            measure_loss(SYSTEM, args, workers, r)
    finally:
        workers.stop()
        r.close()


if __name__ == "__main__":
    main()
