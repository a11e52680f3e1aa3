"""The arq functions and WorkerSettings the peers benchmark runs (`arq` worker CLI:
`python -m arq systems.arq_tasks.WorkerSettings`, cwd benchmarks/peers).

Configuration comes from the environment, set by systems.arq_bench for its workers:
  PEERS_REDIS_URL    the one shared redis-server (queue, jobs and results)
  PEERS_CONCURRENCY  max_jobs per worker process (unset: arq's default, 10)

Settings, and why (see NOTES-arq-dramatiq-taskiq.md):
- max_jobs: arq's default 10 concurrent jobs per process; the loss workload sets 1 (the
  same one-task-at-a-time per process as every system there).
- poll_delay 1 ms (default 0.5 s): arq workers find jobs by polling the queue's sorted
  set; at 0.5 s an idle worker adds 250 ms on average to every job and a busy one sleeps
  between batches of 100 ids (drain ~350/s instead of ~1,100-1,500/s here). arq documents
  no lower bound; 1 ms is the smallest interval we use for any poll (client result polls
  too). Cost: an idle worker process uses ~10-15% of a core polling.
- keep_result 3600 s (the default; results are stored in Redis).
- job_timeout 5 s (default 300 s): arq marks a running job with an "in-progress" key that
  expires job_timeout + 10 s after the start; a job whose worker was SIGKILLed is taken
  again only once that key expires, so 5 s makes a killed job come back after 15 s, inside
  the loss workload's 60 s settle window (with the default: 310 s).
- Logging at WARNING: arq's CLI logs two INFO lines per job by default.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from arq.connections import RedisSettings
from common import TASK_SECONDS, record_execution_async

REDIS_URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/0")
CONCURRENCY = int(os.environ.get("PEERS_CONCURRENCY") or 10)  # arq's default max_jobs
POLL_DELAY = 0.001  # seconds, worker queue poll and client result poll
JOB_TIMEOUT = 5  # seconds; in-progress key lives JOB_TIMEOUT + 10 s
PIPELINE_STEPS = 3


def pipeline_job_id(pipe_no: int, step_no: int) -> str:
    """Deterministic job id of a pipeline step, so the adapter knows the final step's id
    and a re-run step cannot enqueue its successor twice (arq skips a duplicate id)."""
    return f"pipe:{pipe_no}:{step_no}"


async def noop(ctx: dict[str, Any], x: Any = None) -> Any:
    """The no-op task."""
    return x


async def step(ctx: dict[str, Any], pipe_no: int, step_no: int, value: int) -> int:
    """One pipeline step: enqueues the next step (arq has no chaining primitive), passing
    its result on."""
    result = value + 1
    if step_no < PIPELINE_STEPS:
        await ctx["redis"].enqueue_job("step", pipe_no, step_no + 1, result,
                                       _job_id=pipeline_job_id(pipe_no, step_no + 1))
    return result


async def sleepy(ctx: dict[str, Any], task_no: int) -> int:
    """The loss workload's task: 20 ms of work, then count this execution."""
    await asyncio.sleep(TASK_SECONDS)  # the task's work, not synchronization
    await record_execution_async(ctx["redis"], task_no)
    return task_no


# dictConfig for `arq --custom-log-dict`: warnings and errors only (no per-job lines).
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler", "level": "WARNING"}},
    "loggers": {"arq": {"handlers": ["stderr"], "level": "WARNING"}},
}


class WorkerSettings:
    """What `arq` reads to build each worker process."""

    functions = [noop, step, sleepy]
    redis_settings = RedisSettings.from_dsn(REDIS_URL)
    max_jobs = CONCURRENCY
    poll_delay = POLL_DELAY
    keep_result = 3600
    job_timeout = JOB_TIMEOUT
