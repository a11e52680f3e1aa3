"""The frames that cross the Go/Python boundary, written down once.

Every code, the command builders and the positions of the fields in each frame
live here; everything else in the package imports them. The Go side of the
contract is ``core/frames`` (its package doc lists the same frames). Frames are
positional msgpack arrays, because every step call crosses twice and the cost
per field matters; events are read by index, through the named positions below.
"""

from __future__ import annotations

from typing import Any

# ------------------------------------------------------------------- lanes

LANE_ASYNC = 0
LANE_BLOCKING = 1
LANE_NAMES = ("async", "blocking")

# ----------------------------------------------------------------- statuses

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED = 1, 2, 3, 4, 5
STATUS_NAMES = {PENDING: "pending", RUNNING: "running", SUCCEEDED: "succeeded",
                FAILED: "failed", CANCELLED: "cancelled"}
# Not a store status: a submission refused locally; the "result" is the exception.
LOCAL_ERROR = -1

# ------------------------------------------------------------------ commands
# A batch is a list of commands, each a list led by its code.

CMD_SUBMIT, CMD_COMPLETE, CMD_CAPACITY, CMD_CANCEL, CMD_WATCH, CMD_PAUSE = 1, 2, 3, 4, 5, 6
CMD_CRUMB = 7

# Field positions shared by the commands that name an operation.
CMD_UNIT, CMD_PATH = 1, 2
SUBMIT_TOKEN = 8
WATCH_TOKEN = 3


def submit(unit: str, path: str, parent: str, depth: int, name: str, lane: int, args: bytes,
           token: int, retries: int, backoff_ms: int, backoff_max_ms: int, timeout_ms: int,
           priority: int) -> list[Any]:
    """Create (or join, or replay) an operation; ``token`` (0: none) hears its end."""
    return [CMD_SUBMIT, unit, path, parent, depth, name, lane, args, token,
            retries, backoff_ms, backoff_max_ms, timeout_ms, priority]


def complete(unit: str, path: str, attempt: int, ok: bool, result: bytes | None,
             error: list[Any] | None, no_retry: bool = False) -> list[Any]:
    """The end of one attempt: a result, or an error frame (see :func:`error`)."""
    return [CMD_COMPLETE, unit, path, attempt, ok, result, error, no_retry]


def capacity(lane: int, delta: int) -> list[Any]:
    """Change a lane's slots by ``delta``."""
    return [CMD_CAPACITY, lane, delta]


def cancel(unit: str, path: str, reason: str) -> list[Any]:
    """Cancel a unit (``path`` "") or one call and everything under it."""
    return [CMD_CANCEL, unit, path, reason]


def watch(unit: str, path: str, token: int) -> list[Any]:
    """Have ``token`` told when the operation finishes."""
    return [CMD_WATCH, unit, path, token]


def pause(paused: bool) -> list[Any]:
    """Stop (or resume) reserving new work, as a draining worker does."""
    return [CMD_PAUSE, paused]


def crumb(unit: str, path: str, at_ms: int, message: str, metadata: bytes | None) -> list[Any]:
    """A breadcrumb for the operation's timeline (``metadata`` msgpack-encoded)."""
    return [CMD_CRUMB, unit, path, at_ms, message, metadata]


def command_token(cmd: list[Any]) -> int | None:
    """The waiter token a submit or watch command carries; None for other commands."""
    if cmd and cmd[0] == CMD_SUBMIT and len(cmd) > SUBMIT_TOKEN:
        return cmd[SUBMIT_TOKEN]
    if cmd and cmd[0] == CMD_WATCH and len(cmd) > WATCH_TOKEN:
        return cmd[WATCH_TOKEN]
    return None


_COMMAND_NAMES = {CMD_SUBMIT: "submit", CMD_COMPLETE: "completion", CMD_CAPACITY: "capacity",
                  CMD_CANCEL: "cancel", CMD_WATCH: "watch", CMD_PAUSE: "pause",
                  CMD_CRUMB: "breadcrumb"}
_NAMES_AN_OPERATION = {CMD_SUBMIT, CMD_COMPLETE, CMD_CANCEL, CMD_WATCH, CMD_CRUMB}
_SUBMIT_NAME = 5


def describe(cmd: list[Any]) -> str:
    """A command for a log line: its kind and, where it names one, the run and step
    (with the step's name for a submit). Never raises, whatever the command holds."""
    if not cmd:
        return "empty command"
    kind = _COMMAND_NAMES.get(cmd[0], f"command {cmd[0]!r}")
    if cmd[0] not in _NAMES_AN_OPERATION or len(cmd) <= CMD_PATH:
        return kind
    out = f"{kind} of run {cmd[CMD_UNIT]} step {cmd[CMD_PATH] or '(the run)'}"
    if cmd[0] == CMD_SUBMIT and len(cmd) > _SUBMIT_NAME:
        out += f" ({cmd[_SUBMIT_NAME]})"
    return out


def error(type_name: str, message: str, traceback: str, payload: bytes | None) -> list[Any]:
    """An error frame: [type, message, traceback, payload]."""
    return [type_name, message, traceback, payload]


ERR_TYPE, ERR_MESSAGE, ERR_TRACEBACK, ERR_PAYLOAD = 0, 1, 2, 3

# -------------------------------------------------------------------- replies
# A reply is [errors, events]; each error is [command_index, code, message].

REPLY_ERRORS, REPLY_EVENTS = 0, 1

# -------------------------------------------------------------------- events
# Each event is a list led by its kind.

EV_DELIVER, EV_RESULT, EV_CANCEL, EV_MIX, EV_LOG = 1, 2, 3, 4, 5
EV_KIND = 0

# [1, unit, path, parent, depth, name, lane, args, attempt]: run this.
DELIVER_UNIT, DELIVER_PATH, DELIVER_PARENT, DELIVER_DEPTH = 1, 2, 3, 4
DELIVER_NAME, DELIVER_LANE, DELIVER_ARGS, DELIVER_ATTEMPT = 5, 6, 7, 8

# [2, token, status, result|None, error|None]: what a token waited on ended.
RESULT_TOKEN, RESULT_STATUS, RESULT_VALUE, RESULT_ERROR = 1, 2, 3, 4

# [3, unit, path, error|None]: stop running this.
CANCEL_UNIT, CANCEL_PATH, CANCEL_ERROR = 1, 2, 3

# [4, async, blocking, async_delta, blocking_delta]: the embedded optimizer moved workers.
MIX_ASYNC, MIX_BLOCKING, MIX_ASYNC_DELTA, MIX_BLOCKING_DELTA = 1, 2, 3, 4

# [5, level, message, unit, path]: a record for the log (slog levels).
LOG_LEVEL, LOG_MESSAGE, LOG_UNIT, LOG_PATH = 1, 2, 3, 4

# ------------------------------------------------------------------- records
# An operation record (a get, or each row of a runs, unit or failed-runs query):
# [unit, path, parent, depth, name, lane, status, attempts, worker,
#  created_ns, started_ns, finished_ns, result|None, error|None, args|None]

OP_UNIT, OP_PATH, OP_PARENT, OP_DEPTH, OP_NAME, OP_LANE, OP_STATUS = 0, 1, 2, 3, 4, 5, 6
OP_ATTEMPTS, OP_WORKER, OP_CREATED, OP_STARTED, OP_FINISHED = 7, 8, 9, 10, 11
OP_RESULT, OP_ERROR, OP_ARGS = 12, 13, 14

# Counts (per step name or lane): [succeeded, failed, retried, cancelled, sum_ms,
# [bucket, ...]], the buckets' upper bounds in ms coming with them.
COUNT_OK, COUNT_FAILED, COUNT_RETRIED, COUNT_CANCELLED, COUNT_SUM_MS, COUNT_BUCKETS = (
    0, 1, 2, 3, 4, 5)

# A timeline event: [at_ms, path, kind, message, metadata|None].
EVENT_AT, EVENT_PATH, EVENT_KIND, EVENT_MESSAGE, EVENT_DATA = 0, 1, 2, 3, 4

# Stats: per lane [depth, oldest_age_ms, running, capacity, inflight].
STATS_FIELDS = ("depth", "oldest_age_ms", "running", "capacity", "inflight")

# ------------------------------------------------------------------- queries

QUERY_FAILED, QUERY_REQUEUE, QUERY_COUNTERS, QUERY_DECISIONS = 1, 2, 3, 4
QUERY_RUNS, QUERY_UNIT, QUERY_TIMELINE, QUERY_STATS, QUERY_FLEET, QUERY_SERIES = 5, 6, 7, 8, 9, 10


def query_failed(offset: int, limit: int) -> list[Any]:
    """The dead letters: failed runs, newest first -> [record, ...]."""
    return [QUERY_FAILED, offset, limit]


def query_requeue(unit: str) -> list[Any]:
    """Run a failed or cancelled run again -> None."""
    return [QUERY_REQUEUE, unit]


def query_counters() -> list[Any]:
    """This process's counters -> [started, succeeded, failed, retried, sum_secs, buckets,
    {name: counts}]."""
    return [QUERY_COUNTERS]


def query_decisions() -> list[Any]:
    """The optimizer's latest decisions -> [{...}, ...] (the embedded one's, or on Redis
    the foremen's as recorded)."""
    return [QUERY_DECISIONS]


def query_runs(since_ms: int, until_ms: int, status: int, name: str, limit: int) -> list[Any]:
    """Runs newest first (0 and "" mean any) -> [record, ...]."""
    return [QUERY_RUNS, since_ms, until_ms, status, name, limit]


def query_unit(unit: str) -> list[Any]:
    """Every operation of a run, in call order -> [record, ...]."""
    return [QUERY_UNIT, unit]


def query_timeline(unit: str) -> list[Any]:
    """A run's timeline -> [dropped, [event, ...]]."""
    return [QUERY_TIMELINE, unit]


def query_stats(since_ms: int) -> list[Any]:
    """Counts since a time -> [bucket bounds ms, {name or @lane: counts}]."""
    return [QUERY_STATS, since_ms]


def query_fleet() -> list[Any]:
    """The foremen and their workers -> {"foremen": [...]} (Redis)."""
    return [QUERY_FLEET]


def query_series(since_ms: int, coarse: bool) -> list[Any]:
    """The foremen's samples since a time -> [sample, ...] (Redis)."""
    return [QUERY_SERIES, since_ms, coarse]


# ---------------------------------------------------------------- schedules
# Times cross as Unix ms (0: none). A schedule's state:
# [name, workflow, spec, tz, next_ms, paused, created_ms, last_tick_ms, last_unit,
#  last_fired_ms, last_status, fired, skipped, seen_ms]

QUERY_SCHEDULE_REGISTER, QUERY_SCHEDULE_FIRE, QUERY_SCHEDULES, QUERY_SCHEDULE_PAUSE = (
    11, 12, 13, 14)
# What firing a tick did (store.TickOutcome).
TICK_FIRED, TICK_TAKEN, TICK_PAUSED, TICK_OVERLAP = 1, 2, 3, 4
SCHED_NAME, SCHED_WORKFLOW, SCHED_SPEC, SCHED_TZ, SCHED_NEXT, SCHED_PAUSED = 0, 1, 2, 3, 4, 5
SCHED_CREATED, SCHED_LAST_TICK, SCHED_LAST_UNIT, SCHED_LAST_FIRED = 6, 7, 8, 9
SCHED_LAST_STATUS, SCHED_FIRED, SCHED_SKIPPED, SCHED_SEEN = 10, 11, 12, 13


def query_schedule_register(name: str, workflow: str, spec: str, tz: str,
                            next_ms: int) -> list[Any]:
    """Create or update a schedule's record, keeping its state -> state."""
    return [QUERY_SCHEDULE_REGISTER, name, workflow, spec, tz, next_ms]


def query_schedule_fire(name: str, workflow: str, spec: str, tz: str, next_ms: int,
                        tick_ms: int, overlap: bool, lane: int, args: bytes, retries: int,
                        backoff_ms: int, backoff_max_ms: int, timeout_ms: int,
                        priority: int) -> list[Any]:
    """Claim a tick and submit its run, as one step -> [outcome, prev_tick_ms, unit]."""
    return [QUERY_SCHEDULE_FIRE, name, workflow, spec, tz, next_ms, tick_ms, overlap, lane,
            args, retries, backoff_ms, backoff_max_ms, timeout_ms, priority]


def query_schedules() -> list[Any]:
    """Every schedule of the namespace, by name -> [state, ...]."""
    return [QUERY_SCHEDULES]


def query_schedule_pause(name: str, paused: bool) -> list[Any]:
    """Pause or resume a schedule -> state (not_found for an unknown one)."""
    return [QUERY_SCHEDULE_PAUSE, name, paused]
