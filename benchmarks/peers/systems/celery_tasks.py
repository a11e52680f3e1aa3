"""The Celery app the peers benchmark runs: imported by the adapter and by its workers.

Configuration comes from the environment, set by systems.celery_bench for itself and its
worker processes alike:
  PEERS_REDIS_URL   broker and result backend (the one shared redis-server)
  PEERS_VARIANT     "default", or "durable" for late acknowledgement

Settings, and why (see also README.md, "Settings: Celery"):
- Redis broker and Redis result backend, results stored (`task_ignore_result` off).
- `worker_prefetch_multiplier = 64`: Celery's "Optimizing" guide says that for many
  short tasks where throughput matters the multiplier "should be large ... Say 64, or 128".
- Durable row: `task_acks_late` + `task_reject_on_worker_lost`, and a 10 s broker
  visibility timeout with the unacked-restore sweep every second (kombu defaults: 1 h, and
  a sweep only every 10 x 10 s), so a message whose worker was SIGKILLed is redelivered
  within the loss workload's 60 s settle window.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery
from common import TASK_SECONDS, record_execution

REDIS_URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/0")
DURABLE = os.environ.get("PEERS_VARIANT", "default") == "durable"
PREFETCH_MULTIPLIER = 64
VISIBILITY_TIMEOUT = 10  # seconds, durable row only

app = Celery("peersbench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    worker_prefetch_multiplier=PREFETCH_MULTIPLIER,
    task_ignore_result=False,
    broker_connection_retry_on_startup=True,
    # JSON is Celery's default serializer; spelled out so the settings are all in one place.
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
)
if DURABLE:
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        broker_transport_options={
            "visibility_timeout": VISIBILITY_TIMEOUT,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
    )

_recorder: Any = None


@app.task(name="peersbench.noop")
def noop(x: Any = None) -> Any:
    """The no-op task (in a chain it receives the previous step's result)."""
    return x


@app.task(name="peersbench.sleepy")
def sleepy(task_no: int) -> int:
    """The loss workload's task: 20 ms of work, then count this execution."""
    global _recorder
    time.sleep(TASK_SECONDS)  # the task's work, not synchronization
    if _recorder is None:
        import redis  # the worker's own client for the execution count

        _recorder = redis.Redis.from_url(REDIS_URL)
    record_execution(_recorder, task_no)
    return task_no
