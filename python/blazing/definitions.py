"""What the decorators record: steps, workflows and services, with their rules."""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from blazing.context import current
from blazing.errors import DefinitionError
from blazing.frames import LANE_ASYNC, LANE_BLOCKING
from blazing.services import BaseService

_STEP_TYPES = {"BLOCKING": LANE_BLOCKING, "NON_BLOCKING": LANE_ASYNC}


def parse_step_type(step_type: str | None) -> int | None:
    """Map a ``step_type`` spelling to a lane; ``None`` means "from the function"."""
    if step_type is None:
        return None
    if not isinstance(step_type, str):
        raise DefinitionError(
            f"step_type must be a string such as 'BLOCKING' or 'NON_BLOCKING', "
            f"not {type(step_type).__name__}"
        )
    key = step_type.strip().upper().replace("-", "_")
    if key not in _STEP_TYPES:
        raise DefinitionError(
            f"unknown step_type {step_type!r}: use 'BLOCKING' or 'NON_BLOCKING' "
            "(also 'NON-BLOCKING', any case)"
        )
    return _STEP_TYPES[key]


@dataclass(frozen=True)
class Options:
    """Per-call execution options of a step or workflow."""

    retries: int = 0
    backoff_ms: int = 0
    backoff_max_ms: int = 0
    timeout_ms: int = 0
    priority: int = 0


#: Bounds of the whole-number options, as the core honours them (it clamps to 2**20).
MAX_PRIORITY = 1 << 20
MAX_RETRIES = 1 << 20
#: Longest time option, in seconds (about 31 years): its milliseconds must fit the
#: core's nanosecond durations with room to spare.
MAX_SECONDS = 10**9


def _seconds_to_ms(name: str, value: float | None) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DefinitionError(f"{name}= must be a number of seconds, not {value!r}")
    if value < 0:
        raise DefinitionError(f"{name}= must not be negative, got {value!r}")
    if value > MAX_SECONDS:
        raise DefinitionError(f"{name}={value!r} is more than {MAX_SECONDS:,} seconds")
    ms = int(round(value * 1000))
    return max(ms, 1) if value > 0 else 0


def make_options(retries: int = 0, retry_backoff: float | None = None,
                 retry_backoff_max: float | None = None, timeout: float | None = None,
                 priority: int = 0, queue: str | None = None) -> Options:
    """Validate decorator options (all errors are raised at decoration time)."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise DefinitionError(f"retries= must be a non-negative int, not {retries!r}")
    if retries > MAX_RETRIES:
        raise DefinitionError(f"retries={retries!r} is more than {MAX_RETRIES:,}")
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise DefinitionError(f"priority= must be an int, not {priority!r}")
    if not -MAX_PRIORITY <= priority <= MAX_PRIORITY:
        raise DefinitionError(
            f"priority={priority!r} is out of range: from {-MAX_PRIORITY:,} to {MAX_PRIORITY:,}")
    if queue not in (None, "default"):
        raise DefinitionError(
            f"queue={queue!r}: named queues are not offered by this runtime yet; "
            "use priority= to order work within a lane"
        )
    return Options(
        retries=retries,
        backoff_ms=_seconds_to_ms("retry_backoff", retry_backoff),
        backoff_max_ms=_seconds_to_ms("retry_backoff_max", retry_backoff_max),
        timeout_ms=_seconds_to_ms("timeout", timeout),
        priority=priority,
    )


@dataclass
class Definition:
    """A registered step or workflow."""

    name: str
    fn: Callable[..., Any]
    kind: str  # "step" or "workflow"
    lane: int
    is_async: bool
    wants_services: bool
    options: Options
    version_pins: dict[str, Any] = field(default_factory=dict)
    wrapper: Callable[..., Any] | None = None


def wants_services(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` declares a ``services`` parameter."""
    try:
        return "services" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def make_wrapper(defn: Definition) -> Callable[..., Any]:
    """The function the decorator returns.

    Outside a running workflow or step it is the plain function. Inside one,
    a call becomes a durable child operation: an awaitable where an event loop
    runs in this thread, else (a sync step on a worker thread) the result.
    """
    fn = defn.fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ex = current.get()
        if ex is None:
            return fn(*args, **kwargs)
        return ex.host.call_child(ex, defn, args, kwargs)

    if defn.is_async:
        _mark_coroutine_function(wrapper)
    wrapper.__blazing_definition__ = defn  # type: ignore[attr-defined]
    return wrapper


def _mark_coroutine_function(fn: Callable[..., Any]) -> None:
    # Keep asyncio.iscoroutinefunction (and, from Python 3.12, inspect's) true
    # for async steps, so code that checks it treats the wrapper like the
    # function. The wrapper stays a plain def so that calls inside a workflow
    # are submitted when made, in call order, and so a sync step can call an
    # async one and get its value.
    marker = getattr(inspect, "markcoroutinefunction", None)
    if marker is not None:
        marker(fn)
    else:
        fn._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]


def define_step(fn: Callable[..., Any], step_type: str | None, sandboxed: bool,
                options: Options) -> Definition:
    """Check a step's rules and build its definition."""
    if sandboxed:
        raise DefinitionError(
            f"step {fn.__name__!r}: sandboxed=True is not offered by this runtime; "
            "steps run as ordinary code in worker processes. Remove sandboxed=True."
        )
    if not callable(fn):
        raise DefinitionError(f"@app.step needs a function, not {type(fn).__name__}")
    is_async = inspect.iscoroutinefunction(fn)
    lane = parse_step_type(step_type)
    if lane is None:
        lane = LANE_ASYNC if is_async else LANE_BLOCKING
    elif lane == LANE_ASYNC and not is_async:
        raise DefinitionError(
            f"step {fn.__name__!r} is a plain def but step_type={step_type!r}: a sync "
            "function would block the event loop. Make it `async def` or drop step_type."
        )
    return Definition(name=fn.__name__, fn=fn, kind="step", lane=lane, is_async=is_async,
                      wants_services=wants_services(fn), options=options)


def define_workflow(fn: Callable[..., Any], version_pins: dict[str, Any] | None,
                    options: Options) -> Definition:
    """Check a workflow's rules and build its definition."""
    if not inspect.iscoroutinefunction(fn):
        raise DefinitionError(
            f"workflow {getattr(fn, '__name__', fn)!r} must be an `async def`: workflows "
            "run on async workers and await their steps"
        )
    if version_pins is not None and not isinstance(version_pins, dict):
        raise DefinitionError(f"version_pins= must be a dict, not {type(version_pins).__name__}")
    return Definition(name=fn.__name__, fn=fn, kind="workflow", lane=LANE_ASYNC, is_async=True,
                      wants_services=wants_services(fn), options=options,
                      version_pins=dict(version_pins or {}))


def check_service(cls: Any) -> type[BaseService]:
    """A service must be a BaseService subclass."""
    if not (isinstance(cls, type) and issubclass(cls, BaseService)):
        raise DefinitionError(
            f"@app.service needs a subclass of blazing.BaseService, not {cls!r}"
        )
    return cls
