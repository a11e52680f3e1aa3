"""Taskiq in the peers benchmark (runs with benchmarks/peers/.venvs/taskiq).

Two worker commands `python -m taskiq worker systems.taskiq_tasks:broker --workers 1`
(each its own process group: taskiq's process manager plus one worker process running
async tasks, up to --max-async-tasks 100 at once, taskiq's default; the loss workload uses
1), taskiq-redis brokers (variant "default": ListQueueBroker; "durable": RedisStreamBroker)
and RedisAsyncResultBackend. The producer is one asyncio client that awaits `task.kiq(...)`
in gathered chunks of common.ENQUEUE_CHUNK (1,000). Latency waits with taskiq's own
`wait_result(check_interval=0.001)` (it polls the result key); drain and pipelines watch the
result keys (the task ids) with pipelined EXISTS. Settings and reasons: taskiq_tasks.py.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import redis
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

SYSTEM = "taskiq"
MAX_ASYNC_TASKS = 100  # taskiq's default per worker process
RESULT_POLL = 0.001  # seconds, wait_result's check_interval (default 0.2; no documented floor)


def worker_argv(max_async_tasks: int) -> Callable[[int], list[str]]:
    """Command line of one taskiq worker command (one worker process)."""
    argv = [sys.executable, "-m", "taskiq", "worker", "systems.taskiq_tasks:broker",
            "--workers", "1", "--max-async-tasks", str(max_async_tasks),
            "--log-level", "WARNING"]
    return lambda _index: argv


async def run(args: Any, workers: Workers, sync: redis.Redis) -> None:  # noqa: C901
    """Run one workload and emit its figures."""
    from systems.taskiq_tasks import (
        PIPELINE_STEPS,
        broker,
        noop,
        pipeline_task_id,
        result_backend,
        sleepy,
        step,
    )

    async def wrong(task_ids: list[str], expected: list[Any]) -> int:
        """How many tasks have no successful result equal to `expected` (untimed)."""
        async def bad(task_id: str, want: Any) -> bool:
            try:
                r = await result_backend.get_result(task_id)
            except Exception:  # noqa: BLE001 - a missing result counts, whatever the error
                return True
            return r.is_err or r.return_value != want
        flags = await gather_chunked(lambda t=t, w=w: bad(t, w)
                                     for t, w in zip(task_ids, expected, strict=True))
        return sum(flags)

    async def kick_pipeline(i: int) -> Any:
        return await step.kicker().with_task_id(pipeline_task_id(i, 1)).kiq(i, 1, 0)

    n = args.n
    await broker.startup()  # also creates the stream's consumer group (durable row)
    try:
        if args.workload == "enqueue":
            t0 = time.perf_counter()
            await gather_chunked(lambda i=i: noop.kiq(i) for i in range(n))
            emit(SYSTEM, args.variant, args.workload, per_s=n / (time.perf_counter() - t0))

        elif args.workload == "drain":
            sentinel = await noop.kiq(-1)
            tasks = await gather_chunked(lambda i=i: noop.kiq(i) for i in range(n))
            ids = [t.task_id for t in tasks]
            workers.start()
            if wait_keys_exist(sync, [sentinel.task_id], interval=0.001, timeout=120):
                raise RuntimeError("taskiq: the sentinel task never finished")
            t0 = time.perf_counter()
            left = wait_keys_exist(sync, ids)
            elapsed = time.perf_counter() - t0
            if left:
                raise RuntimeError(f"taskiq drain: {left} of {n} results never appeared")
            emit(SYSTEM, args.variant, args.workload, per_s=n / elapsed,
                 missing=await wrong(ids, list(range(n))))

        elif args.workload == "latency":
            workers.start()

            async def round_trip(i: int) -> None:
                task = await noop.kiq(i)
                res = await task.wait_result(check_interval=RESULT_POLL, timeout=60)
                if res.is_err or res.return_value != i:
                    raise RuntimeError(f"taskiq latency: wrong result for task {i}: {res}")

            figures = await time_round_trips_async(round_trip, n)
            emit(SYSTEM, args.variant, args.workload, **figures)

        elif args.workload == "pipelines":
            workers.start()
            for i in range(-WARMUP, 0):
                await kick_pipeline(i)
            if wait_keys_exist(sync, [pipeline_task_id(i, PIPELINE_STEPS)
                                      for i in range(-WARMUP, 0)], timeout=120):
                raise RuntimeError("taskiq: warm-up pipelines never finished")
            finals = [pipeline_task_id(i, PIPELINE_STEPS) for i in range(n)]
            t0 = time.perf_counter()
            await gather_chunked(lambda i=i: kick_pipeline(i) for i in range(n))
            left = wait_keys_exist(sync, finals)
            elapsed = time.perf_counter() - t0
            if left:
                raise RuntimeError(f"taskiq pipelines: {left} of {n} never finished")
            emit(SYSTEM, args.variant, args.workload, per_s=n / elapsed,
                 missing=await wrong(finals, [PIPELINE_STEPS] * n))

        elif args.workload == "loss":
            workers.start()
            await gather_chunked(lambda i=i: sleepy.kiq(i) for i in range(n))
            # Durable row: messages still pending (delivered, never acked) in the stream's
            # consumer group; taskiq-redis reclaims them only after a fetch that returned
            # new messages, so on a quiet stream they wait for the next submission.
            def pending() -> dict[str, Any]:
                if args.variant != "durable":
                    return {}
                return {"pending": sync.xpending("taskiq", "taskiq")["pending"]}

            measure_loss(SYSTEM, args, workers, sync, after=pending)
    finally:
        await broker.shutdown()


def main() -> None:
    """Parse the contract's command line, run the workload, stop every worker."""
    args = parse_args()
    if args.variant not in ("default", "durable"):
        raise SystemExit(f"taskiq: unknown variant {args.variant!r} (default, durable)")
    env = {"PEERS_REDIS_URL": args.redis, "PEERS_VARIANT": args.variant}
    os.environ.update(env)
    # loss: one task at a time per process, as for every system
    concurrency = 1 if args.workload == "loss" else MAX_ASYNC_TASKS
    workers = Workers(worker_argv(concurrency), env=env)
    sync = redis.Redis.from_url(args.redis)
    try:
        asyncio.run(run(args, workers, sync))
    finally:
        workers.stop()
        sync.close()


if __name__ == "__main__":
    main()
