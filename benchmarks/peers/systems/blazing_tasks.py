"""The Blazing Flow app the peers benchmark runs: what the worker processes import.

Redis URL and namespace come from BLAZING_REDIS_URL / BLAZING_NAMESPACE, set by the
adapter for its workers and its own client alike.
"""

from __future__ import annotations

import asyncio
import os

from common import TASK_SECONDS, RespClient, record_execution

from blazing import Blazing

app = Blazing(local_workers=False)
_recorder: RespClient | None = None


@app.step
async def noop(x: int) -> int:
    """The no-op task."""
    return x


@app.workflow
async def three_steps(x: int) -> int:
    """The 3-step pipeline: three chained no-op steps."""
    return await noop(await noop(await noop(x)))


@app.step
async def sleepy(task_no: int) -> int:
    """The loss workload's task: 20 ms of waiting, then count this execution."""
    global _recorder
    await asyncio.sleep(TASK_SECONDS)  # the task's work, not synchronization
    if _recorder is None:
        _recorder = RespClient(os.environ["BLAZING_REDIS_URL"])
    record_execution(_recorder, task_no)  # one ~50 µs round trip; blocking is fine here
    return task_no
