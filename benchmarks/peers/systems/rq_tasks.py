"""The RQ job functions the peers benchmark runs: imported by RQ's workers by dotted path.

PEERS_REDIS_URL (set by systems.rq_bench for its workers) is where the loss workload's
jobs count their executions.
"""

from __future__ import annotations

import os
import time
from typing import Any

from common import TASK_SECONDS, record_execution

_recorder: Any = None


def noop(x: Any = None) -> Any:
    """The no-op job."""
    return x


def sleepy(task_no: int) -> int:
    """The loss workload's job: 20 ms of work, then count this execution."""
    global _recorder
    time.sleep(TASK_SECONDS)  # the job's work, not synchronization
    if _recorder is None:
        import redis  # the worker's own client for the execution count

        _recorder = redis.Redis.from_url(os.environ["PEERS_REDIS_URL"])
    record_execution(_recorder, task_no)
    return task_no
