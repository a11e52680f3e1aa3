"""arq in the peers benchmark (runs with benchmarks/peers/.venvs/arq).

Two `python -m arq systems.arq_tasks.WorkerSettings` processes (asyncio, max_jobs 10 each;
1 in the loss workload); results kept in Redis. The producer is one asyncio client
(`arq.create_pool`) that submits with `enqueue_job`, awaited in gathered chunks of
common.ENQUEUE_CHUNK (1,000). Latency waits with arq's own `Job.result(poll_delay=0.001)`; drain and
pipelines watch the result keys (`arq:result:<job id>`) with pipelined EXISTS, so waiting
costs Redis little. Settings and their reasons: systems/arq_tasks.py.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import redis
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import result_key_prefix
from arq.jobs import Job
from common import (
    WARMUP,
    Workers,
    emit,
    gather_chunked,
    measure_loss,
    parse_args,
    time_round_trips_async,
    wait_keys_exist,
)

SYSTEM = "arq"


def worker_argv(_index: int) -> list[str]:
    """Command line of one arq worker process."""
    return [sys.executable, "-m", "arq", "systems.arq_tasks.WorkerSettings",
            "--custom-log-dict", "systems.arq_tasks.LOG_CONFIG"]


async def enqueue(pool: ArqRedis, function: str, *args: Any, **kw: Any) -> Job:
    """enqueue_job that fails loudly instead of returning None (duplicate id)."""
    job = await pool.enqueue_job(function, *args, **kw)
    if job is None:
        raise RuntimeError(f"arq refused to enqueue {function}{args} (duplicate job id?)")
    return job


async def results_ok(jobs: list[Job], expected: list[Any]) -> int:
    """How many of `jobs` have no successful result equal to `expected` (untimed check)."""
    infos = await gather_chunked(lambda j=j: j.result_info() for j in jobs)
    return sum(1 for info, want in zip(infos, expected, strict=True)
               if info is None or not info.success or info.result != want)


async def run(args: Any, workers: Workers, sync: redis.Redis) -> None:
    """Run one workload and emit its figures."""
    from systems.arq_tasks import PIPELINE_STEPS, POLL_DELAY, pipeline_job_id

    n = args.n
    pool = await create_pool(RedisSettings.from_dsn(args.redis))
    try:
        if args.workload == "enqueue":
            t0 = time.perf_counter()
            await gather_chunked(lambda i=i: enqueue(pool, "noop", i) for i in range(n))
            emit(SYSTEM, args.variant, args.workload, per_s=n / (time.perf_counter() - t0))

        elif args.workload == "drain":
            sentinel = await enqueue(pool, "noop", -1)
            jobs = await gather_chunked(lambda i=i: enqueue(pool, "noop", i) for i in range(n))
            keys = [result_key_prefix + j.job_id for j in jobs]
            workers.start()
            if wait_keys_exist(sync, [result_key_prefix + sentinel.job_id], interval=0.001,
                               timeout=120):
                raise RuntimeError("arq: the sentinel job never finished")
            t0 = time.perf_counter()
            left = wait_keys_exist(sync, keys)
            elapsed = time.perf_counter() - t0
            if left:
                raise RuntimeError(f"arq drain: {left} of {n} results never appeared")
            missing = await results_ok(jobs, list(range(n)))
            emit(SYSTEM, args.variant, args.workload, per_s=n / elapsed, missing=missing)

        elif args.workload == "latency":
            workers.start()

            async def round_trip(i: int) -> None:
                job = await enqueue(pool, "noop", i)
                if await job.result(timeout=60, poll_delay=POLL_DELAY) != i:
                    raise RuntimeError(f"arq latency: wrong result for task {i}")

            figures = await time_round_trips_async(round_trip, n)
            emit(SYSTEM, args.variant, args.workload, **figures)

        elif args.workload == "pipelines":
            workers.start()
            for i in range(-WARMUP, 0):
                await enqueue(pool, "step", i, 1, 0, _job_id=pipeline_job_id(i, 1))
            if wait_keys_exist(sync, [result_key_prefix + pipeline_job_id(i, PIPELINE_STEPS)
                                      for i in range(-WARMUP, 0)], timeout=120):
                raise RuntimeError("arq: warm-up pipelines never finished")
            finals = [result_key_prefix + pipeline_job_id(i, PIPELINE_STEPS) for i in range(n)]
            t0 = time.perf_counter()
            await gather_chunked(lambda i=i: enqueue(pool, "step", i, 1, 0,
                                                     _job_id=pipeline_job_id(i, 1))
                                 for i in range(n))
            left = wait_keys_exist(sync, finals)
            elapsed = time.perf_counter() - t0
            if left:
                raise RuntimeError(f"arq pipelines: {left} of {n} never finished")
            missing = await results_ok(
                [Job(pipeline_job_id(i, PIPELINE_STEPS), pool) for i in range(n)],
                [PIPELINE_STEPS] * n)
            emit(SYSTEM, args.variant, args.workload, per_s=n / elapsed, missing=missing)

        elif args.workload == "loss":
            workers.start()
            await gather_chunked(lambda i=i: enqueue(pool, "sleepy", i) for i in range(n))
            measure_loss(SYSTEM, args, workers, sync)
    finally:
        await pool.aclose()


def main() -> None:
    """Parse the contract's command line, run the workload, stop every worker."""
    args = parse_args()
    env = {"PEERS_REDIS_URL": args.redis}
    if args.workload == "loss":
        env["PEERS_CONCURRENCY"] = "1"  # one task at a time per process, as for every system
    os.environ.update(env)
    workers = Workers(worker_argv, env=env)
    sync = redis.Redis.from_url(args.redis)
    try:
        asyncio.run(run(args, workers, sync))
    finally:
        workers.stop()
        sync.close()


if __name__ == "__main__":
    main()
