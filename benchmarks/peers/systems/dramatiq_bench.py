"""Dramatiq in the peers benchmark (runs with benchmarks/peers/.venvs/dramatiq).

Two worker commands `python -m dramatiq systems.dramatiq_tasks --processes 1 --threads 8`
(each its own process group: Dramatiq's master process plus one worker process with 8
threads, Dramatiq's default; the loss workload uses 1 thread), RedisBroker, results in
Redis through the Results middleware. The producer sends with `actor.send` one message at a
time (Dramatiq has no batch send). Latency waits with `Message.get_result(block=True)`
(BRPOPLPUSH on the result key: no polling); drain and pipelines watch the result keys with
pipelined EXISTS. Settings and their reasons: systems/dramatiq_tasks.py.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import redis
from common import (
    WARMUP,
    Workers,
    emit,
    measure_loss,
    parse_args,
    time_round_trips,
    wait_keys_exist,
)

SYSTEM = "dramatiq"
THREADS = 8  # Dramatiq's default --threads


def worker_argv(threads: int) -> Callable[[int], list[str]]:
    """Command line of one Dramatiq worker command (one worker process)."""
    argv = [sys.executable, "-m", "dramatiq", "systems.dramatiq_tasks",
            "--processes", "1", "--threads", str(threads)]
    return lambda _index: argv


def main() -> None:  # noqa: C901 - one branch per workload reads best here
    """Parse the contract's command line, run the workload, stop every worker."""
    args = parse_args()
    os.environ["PEERS_REDIS_URL"] = args.redis
    import dramatiq
    from dramatiq.results import ResultError

    from systems.dramatiq_tasks import broker, noop, result_backend, sleepy, step

    threads = 1 if args.workload == "loss" else THREADS  # loss: one task at a time/process
    workers = Workers(worker_argv(threads), env={"PEERS_REDIS_URL": args.redis})
    sync = redis.Redis.from_url(args.redis)
    n = args.n

    def key(message: dramatiq.Message) -> str:
        return result_backend.build_message_key(message)

    def wrong(messages: list[dramatiq.Message], expected: list[object]) -> int:
        """How many messages have no result equal to `expected` (untimed check)."""
        bad = 0
        for m, want in zip(messages, expected, strict=True):
            try:
                bad += result_backend.get_result(m) != want
            except ResultError:  # missing, or the task failed
                bad += 1
        return bad

    def pipe(i: int) -> dramatiq.pipeline:
        return dramatiq.pipeline([step.message(i), step.message(), step.message()])

    try:
        if args.workload == "enqueue":
            t0 = time.perf_counter()
            for i in range(n):
                noop.send(i)
            emit(SYSTEM, args.variant, args.workload, per_s=n / (time.perf_counter() - t0))

        elif args.workload == "drain":
            sentinel = noop.send(-1)
            messages = [noop.send(i) for i in range(n)]
            workers.start()
            if wait_keys_exist(sync, [key(sentinel)], interval=0.001, timeout=120):
                raise RuntimeError("dramatiq: the sentinel message never finished")
            t0 = time.perf_counter()
            left = wait_keys_exist(sync, [key(m) for m in messages])
            elapsed = time.perf_counter() - t0
            if left:
                raise RuntimeError(f"dramatiq drain: {left} of {n} results never appeared")
            emit(SYSTEM, args.variant, args.workload, per_s=n / elapsed,
                 missing=wrong(messages, list(range(n))))

        elif args.workload == "latency":
            workers.start()

            def round_trip(i: int) -> None:
                if noop.send(i).get_result(block=True, timeout=60_000) != i:
                    raise RuntimeError(f"dramatiq latency: wrong result for task {i}")

            emit(SYSTEM, args.variant, args.workload, **time_round_trips(round_trip, n))

        elif args.workload == "pipelines":
            workers.start()
            for i in range(WARMUP):
                if pipe(i).run().get_result(block=True, timeout=120_000) != i + 3:
                    raise RuntimeError("dramatiq: wrong warm-up pipeline result")
            t0 = time.perf_counter()
            pipes = [pipe(i).run() for i in range(n)]
            left = wait_keys_exist(sync, [key(p.messages[-1]) for p in pipes])
            elapsed = time.perf_counter() - t0
            if left:
                raise RuntimeError(f"dramatiq pipelines: {left} of {n} never finished")
            emit(SYSTEM, args.variant, args.workload, per_s=n / elapsed,
                 missing=wrong([p.messages[-1] for p in pipes], [i + 3 for i in range(n)]))

        elif args.workload == "loss":
            workers.start()
            for i in range(n):
                sleepy.send(i)
            measure_loss(SYSTEM, args, workers, sync)
    finally:
        workers.stop()
        broker.close()
        sync.close()


if __name__ == "__main__":
    main()
