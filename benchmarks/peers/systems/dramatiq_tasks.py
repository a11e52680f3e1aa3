"""The Dramatiq broker and actors the peers benchmark runs: imported by the adapter and by
its workers (`python -m dramatiq systems.dramatiq_tasks --processes 1 --threads T`).

Configuration comes from the environment, set by systems.dramatiq_bench for itself and its
workers alike:
  PEERS_REDIS_URL   broker and result backend (the one shared redis-server)

Settings, and why (see NOTES-arq-dramatiq-taskiq.md):
- RedisBroker with Dramatiq's default middleware plus Results(RedisBackend), every actor
  `store_results=True`.
- heartbeat_timeout 5 s (default 60 s) and maintenance_chance 100,000 per million
  (default 1,000): messages a worker fetched but did not ack stay in that worker's ack set;
  Dramatiq puts them back on the queue only during "maintenance", which a random 0.1% of
  broker commands run, and only once the worker has sent no heartbeat for
  heartbeat_timeout. With the defaults a SIGKILLed worker's messages come back after a
  minute at best, and on a quiet queue (a few commands per second) after several more;
  these two values make them come back within seconds, inside the loss workload's 60 s
  settle window. (Live workers heartbeat on every fetch/ack, at least once a second.)
"""

from __future__ import annotations

import os
import time
from typing import Any

import dramatiq
import redis
from common import TASK_SECONDS, record_execution
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

REDIS_URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/0")
HEARTBEAT_TIMEOUT_MS = 5_000
MAINTENANCE_CHANCE = 100_000  # per million broker commands

result_backend = RedisBackend(url=REDIS_URL)
broker = RedisBroker(url=REDIS_URL, heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
                     maintenance_chance=MAINTENANCE_CHANCE)
broker.add_middleware(Results(backend=result_backend))
dramatiq.set_broker(broker)

_recorder: Any = None


@dramatiq.actor(store_results=True)
def noop(x: Any = None) -> Any:
    """The no-op task."""
    return x


@dramatiq.actor(store_results=True)
def step(value: int) -> int:
    """A pipeline step: Dramatiq's `pipeline` passes each result on as the next argument."""
    return value + 1


@dramatiq.actor(store_results=True)
def sleepy(task_no: int) -> int:
    """The loss workload's task: 20 ms of work, then count this execution."""
    global _recorder
    time.sleep(TASK_SECONDS)  # the task's work, not synchronization
    if _recorder is None:
        _recorder = redis.Redis.from_url(REDIS_URL)  # the worker's own counting client
    record_execution(_recorder, task_no)
    return task_no
