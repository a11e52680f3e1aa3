"""RQ in the peers benchmark (runs with .venvs/rq/bin/python).

Workers: two `rq worker --worker-class rq.worker.SimpleWorker` processes on one queue, log
level WARNING. RQ's default `Worker` forks a work-horse process per job, for isolation; RQ
documents `SimpleWorker` as the class that runs jobs in the worker process itself, without
that fork, which is what a throughput run of tiny jobs wants. Results are stored as RQ does
by default (a Redis stream `rq:results:<job id>`, `result_ttl` 500 s); the default pickle
serializer and 180 s job timeout.

Producer: `queue.enqueue` per job, `job.latest_result(timeout=...)` for a round trip (a
blocking XREAD on the job's result stream), and per pipeline three jobs chained with
`depends_on`. Completion of many jobs is watched on their result-stream keys.

SIGKILL (loss workload): RQ does not re-run the job a killed worker was running. The job
stays in the queue's StartedJobRegistry until its heartbeat TTL runs out (SimpleWorker:
job timeout + 60 s = 240 s) and a worker's maintenance pass (every 600 s by default, and at
worker start) then moves it to the FailedJobRegistry as AbandonedJobError - or re-queues it
if it was enqueued with `retry=Retry(...)`, which is not RQ's default and is not used here.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from common import (
    PEERS_DIR,
    Workers,
    emit,
    measure_loss,
    parse_args,
    progress,
    time_round_trips,
    wait_keys_exist,
)

SYSTEM = "rq"
QUEUE = "peersbench"
# RQ 3.0 leaves a dependent job whose enqueue lost a WATCH race to the other worker in the
# ReadyJobRegistry until a maintenance pass (default: every 600 s, and an idle worker only
# wakes every worker_ttl - 15 = 405 s); with two workers that happens to a good part of the
# pipelines' steps. A 1 s maintenance interval and a worker TTL of 16 s (an idle worker
# wakes every second) let that recovery run at the benchmark's time scale.
MAINTENANCE_INTERVAL = 1
WORKER_TTL = 16


def result_key(job_id: str) -> str:
    """The Redis stream RQ 3 writes a job's results to."""
    return f"rq:results:{job_id}"


def worker_argv_for(url: str) -> Any:
    """Worker index -> command line of a SimpleWorker on QUEUE (the index is not needed)."""
    rq_cli = str(Path(sys.executable).parent / "rq")  # the CLI of the venv running us
    argv = [rq_cli, "worker", "--worker-class", "rq.worker.SimpleWorker", "--url", url,
            "--logging_level", "WARNING", "--path", str(PEERS_DIR),
            "--maintenance-interval", str(MAINTENANCE_INTERVAL), "--worker-ttl", str(WORKER_TTL),
            QUEUE]
    return lambda _index: argv


def wait_workers_ready(r: Any, count: int, limit: float = 120.0) -> None:
    """Block until `count` workers have registered."""
    from rq import Worker

    end = time.monotonic() + limit
    while Worker.count(connection=r) < count:
        if time.monotonic() > end:
            raise RuntimeError(f"fewer than {count} RQ workers registered within {limit:.0f} s")
        time.sleep(0.05)  # worker registration happens in other processes: poll


def count_good(jobs: list[Any], expect: list[Any]) -> int:
    """How many of `jobs` have a successful latest result equal to `expect[i]`."""
    from rq.results import Result

    good = 0
    for job, want in zip(jobs, expect, strict=True):
        res = job.latest_result()
        good += res is not None and res.type == Result.Type.SUCCESSFUL and res.return_value == want
    return good


def main() -> None:
    args = parse_args()
    import redis
    from rq import Queue

    from systems.rq_tasks import noop, sleepy

    r = redis.Redis.from_url(args.redis)
    q = Queue(QUEUE, connection=r)
    workers = Workers(worker_argv_for(args.redis), env={"PEERS_REDIS_URL": args.redis})
    n = args.n
    try:
        if args.workload == "enqueue":
            q.enqueue(noop, -1)  # connect before the clock
            t0 = time.perf_counter()
            for i in range(n):
                q.enqueue(noop, i)
            emit(SYSTEM, args.variant, args.workload, per_s=n / (time.perf_counter() - t0))
        elif args.workload == "drain":
            sentinel = q.enqueue(noop, -1)
            jobs = [q.enqueue(noop, i) for i in range(n)]
            workers.start()
            if wait_keys_exist(r, [result_key(sentinel.id)], timeout=120, interval=0.001):
                raise RuntimeError("the sentinel job did not finish within 120 s")
            t0 = time.perf_counter()
            done = not wait_keys_exist(r, [result_key(j.id) for j in jobs])
            elapsed = time.perf_counter() - t0
            missing = n - count_good(jobs, list(range(n)))
            if not done:
                progress(f"rq drain: timed out with {missing} of {n} results missing")
            emit(SYSTEM, args.variant, args.workload, per_s=n / elapsed, missing=missing)
        elif args.workload == "latency":
            workers.start()
            wait_workers_ready(r, workers.count)

            def round_trip(i: int) -> None:
                if q.enqueue(noop, i).latest_result(timeout=60) is None:
                    raise RuntimeError(f"no result for latency job {i} within 60 s")

            emit(SYSTEM, args.variant, args.workload, **time_round_trips(round_trip, n))
        elif args.workload == "pipelines":
            workers.start()
            wait_workers_ready(r, workers.count)

            def pipeline(i: int) -> Any:
                a = q.enqueue(noop, i)
                b = q.enqueue(noop, i, depends_on=a)
                return q.enqueue(noop, i, depends_on=b)

            for i in range(20):
                pipeline(i).latest_result(timeout=120)
            t0 = time.perf_counter()
            lasts = [pipeline(i) for i in range(n)]
            done = not wait_keys_exist(r, [result_key(j.id) for j in lasts])
            elapsed = time.perf_counter() - t0
            missing = n - count_good(lasts, list(range(n)))
            if not done:
                progress(f"rq pipelines: timed out with {missing} of {n} results missing")
            emit(SYSTEM, args.variant, args.workload, per_s=n / elapsed, missing=missing)
        elif args.workload == "loss":
            workers.start()
            wait_workers_ready(r, workers.count)
            for i in range(n):
                q.enqueue(sleepy, i)
            measure_loss(SYSTEM, args, workers, r)
    finally:
        workers.stop()
        r.close()


if __name__ == "__main__":
    main()
