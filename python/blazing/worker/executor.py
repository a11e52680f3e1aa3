"""Running one delivered operation: decode its arguments, inject services,
call the user function, encode the outcome and report it."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from blazing import codec
from blazing.context import Execution, current
from blazing.definitions import Definition
from blazing.errors import DefinitionError

if TYPE_CHECKING:
    from blazing.runtime import Runtime

log = logging.getLogger("blazing.worker")


class _Refused(Exception):
    """An attempt that can never succeed, whatever the retries."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.exc = exc


def prepare(runtime: Runtime, ev: list[Any]) -> tuple[Definition, Execution, tuple[Any, ...],
                                                     dict[str, Any]]:
    """Look up the definition and decode arguments of a delivery event."""
    _, unit, path, _parent, depth, name, lane, args, attempt = ev
    defn = runtime.registry.get(name)
    if defn is None:
        raise _Refused(runtime.unknown(name))
    try:
        a, kw = codec.decode(args)
    except codec.CodecError as exc:
        raise _Refused(codec.with_context(exc, f"arguments of {name} ({unit}/{path})")) from exc
    if not isinstance(a, (list, tuple)) or not isinstance(kw, dict):
        raise _Refused(codec.MalformedPayloadError(
            f"arguments of {name} ({unit}/{path}) are not an (args, kwargs) pair"))
    ex = Execution(runtime, unit, path, depth, name, lane, runtime.services, attempt)
    if defn.wants_services:
        kw = dict(kw)
        kw["services"] = runtime.services
    return defn, ex, tuple(a), kw


def error_frame(exc: BaseException) -> list[Any]:
    """Encode an exception as the core's [type, message, traceback, payload]."""
    info = codec.encode_exception(exc)
    return [info["type"], info["message"], info["traceback"], info["payload"]]


def encode_result(defn: Definition, ex: Execution, value: Any) -> bytes:
    """Encode a result, naming the operation if it cannot be."""
    try:
        return codec.encode(value, ex.runtime.max_value_bytes)
    except codec.CodecError as exc:
        context = f"result of {defn.name} ({ex.unit}/{ex.path})"
        raise _Refused(codec.with_context(exc, context)) from exc


async def run_async_delivery(runtime: Runtime, ev: list[Any]) -> None:
    """Run an async-lane delivery as a task on the runtime loop.

    If the task is cancelled (the run was cancelled or timed out, the lease
    was lost, or the app is stopping) the core expects no completion; the
    runtime's done-callback does the bookkeeping.
    """
    unit, path, attempt = ev[1], ev[2], ev[8]
    key = (unit, path)
    token = None
    try:
        defn, ex, args, kwargs = prepare(runtime, ev)
        if not defn.is_async:
            raise _Refused(DefinitionError(f"{defn.name} is not async but was queued as async"))
        token = current.set(ex)
        value = await defn.fn(*args, **kwargs)
        payload = encode_result(defn, ex, value)
    except _Refused as r:
        _finish_failed(runtime, unit, path, attempt, r.exc, True)
        return
    except Exception as exc:  # noqa: BLE001 - the step's failure is its result
        _finish_failed(runtime, unit, path, attempt, exc, False)
        return
    finally:
        if token is not None:
            current.reset(token)
    runtime.running.pop(key, None)
    runtime.complete(unit, path, attempt, True, payload, None)


def _finish_failed(runtime: Runtime, unit: str, path: str, attempt: int, exc: BaseException,
                   no_retry: bool) -> None:
    runtime.running.pop((unit, path), None)
    runtime.complete(unit, path, attempt, False, None, error_frame(exc), no_retry)


def run_blocking_delivery(
    runtime: Runtime, ev: list[Any], thread_loop: asyncio.AbstractEventLoop | None
) -> asyncio.AbstractEventLoop | None:
    """Run a blocking-lane delivery on this worker thread.

    ``async def`` steps marked BLOCKING run on this thread's own event loop,
    created on first use and returned for reuse.
    """
    unit, path, attempt = ev[1], ev[2], ev[8]
    token = None
    try:
        defn, ex, args, kwargs = prepare(runtime, ev)
        token = current.set(ex)
        if defn.is_async:
            if thread_loop is None:
                thread_loop = asyncio.new_event_loop()
            value = thread_loop.run_until_complete(defn.fn(*args, **kwargs))
        else:
            value = defn.fn(*args, **kwargs)
        payload = encode_result(defn, ex, value)
    except _Refused as r:
        _finish_failed(runtime, unit, path, attempt, r.exc, True)
        return thread_loop
    except Exception as exc:  # noqa: BLE001 - the step's failure is its result
        _finish_failed(runtime, unit, path, attempt, exc, False)
        return thread_loop
    finally:
        if token is not None:
            current.reset(token)
    runtime.complete(unit, path, attempt, True, payload, None)
    return thread_loop
