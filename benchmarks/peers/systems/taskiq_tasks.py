"""The Taskiq broker and tasks the peers benchmark runs: imported by the adapter and by its
workers (`python -m taskiq worker systems.taskiq_tasks:broker --workers 1`).

Configuration comes from the environment, set by systems.taskiq_bench for itself and its
workers alike:
  PEERS_REDIS_URL   broker and result backend (the one shared redis-server)
  PEERS_VARIANT     "default": taskiq-redis ListQueueBroker (LPUSH/BRPOP, no acks);
                    "durable": RedisStreamBroker (consumer group, XACK after the result
                    is saved, unacked messages reclaimed with XAUTOCLAIM)

Settings, and why (see NOTES-arq-dramatiq-taskiq.md):
- Results: RedisAsyncResultBackend, results kept (keep_results=True, no expiry; defaults).
- Durable row: idle_timeout 10 s (default 600 s). A stream message delivered to a worker
  that dies stays pending under that worker's consumer name; another worker claims it
  (XAUTOCLAIM, after each XREADGROUP returns, i.e. at least every xread_block = 2 s) once
  it has been idle for idle_timeout. 10 s brings a killed worker's messages back inside
  the loss workload's 60 s settle window, while staying far above how long a live worker
  holds a fetched batch (at most xread_count = 100 messages). Other stream settings are
  taskiq-redis defaults (xread_count 100, xread_block 2000 ms).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from common import TASK_SECONDS, record_execution_async
from redis.asyncio import Redis
from taskiq import AsyncBroker
from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend, RedisStreamBroker

REDIS_URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/0")
VARIANT = os.environ.get("PEERS_VARIANT", "default")
IDLE_TIMEOUT_MS = 10_000  # durable row: pending messages of a dead worker reclaimed after
PIPELINE_STEPS = 3

result_backend: RedisAsyncResultBackend[Any] = RedisAsyncResultBackend(REDIS_URL)
broker: AsyncBroker
if VARIANT == "durable":
    broker = RedisStreamBroker(REDIS_URL, idle_timeout=IDLE_TIMEOUT_MS)
elif VARIANT == "default":
    broker = ListQueueBroker(REDIS_URL)
else:
    raise SystemExit(f"taskiq: unknown variant {VARIANT!r} (default, durable)")
broker = broker.with_result_backend(result_backend)

_recorder: Redis | None = None


def pipeline_task_id(pipe_no: int, step_no: int) -> str:
    """Deterministic task id of a pipeline step, so the adapter knows the final step's id
    (the result key is the task id)."""
    return f"pipe-{pipe_no}-{step_no}"


@broker.task(task_name="noop")
async def noop(x: Any = None) -> Any:
    """The no-op task."""
    return x


@broker.task(task_name="step")
async def step(pipe_no: int, step_no: int, value: int) -> int:
    """One pipeline step: kicks the next step itself (taskiq's core has no chaining; the
    separate taskiq-pipelines package is not used), passing its result on."""
    result = value + 1
    if step_no < PIPELINE_STEPS:
        await (step.kicker().with_task_id(pipeline_task_id(pipe_no, step_no + 1))
               .kiq(pipe_no, step_no + 1, result))
    return result


@broker.task(task_name="sleepy")
async def sleepy(task_no: int) -> int:
    """The loss workload's task: 20 ms of work, then count this execution."""
    global _recorder
    await asyncio.sleep(TASK_SECONDS)  # the task's work, not synchronization
    if _recorder is None:
        _recorder = Redis.from_url(REDIS_URL)  # the worker's own counting client
    await record_execution_async(_recorder, task_no)
    return task_no
