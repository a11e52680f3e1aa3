"""Running one delivered operation: decode its arguments, inject services, call the
user function, and encode what came of it as an :class:`Outcome`.

The executor reports; it does not act: the caller (the runtime) completes the
attempt and keeps its own books. What it needs from its host is the small
:class:`ExecutorHost` below.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from blazing import codec, frames
from blazing.context import CallHost, Execution, current
from blazing.definitions import Definition
from blazing.errors import DefinitionError
from blazing.worker.attempt_log import attempt_failed

log = logging.getLogger("blazing.worker")


class ExecutorHost(CallHost, Protocol):
    """What running a delivery needs: the definitions, the services, the value limit,
    and where the step calls it makes go (a :class:`~blazing.context.CallHost`)."""

    registry: Mapping[str, Definition]
    services: Any
    max_value_bytes: int

    def unknown(self, name: str) -> Exception:
        """The error for a name nobody registered."""
        ...


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended: a result, or an error frame; ``no_retry`` when retries
    could not help (an unknown name, arguments that cannot be decoded)."""

    unit: str
    path: str
    attempt: int
    ok: bool
    payload: bytes | None = None
    error: list[Any] | None = None
    no_retry: bool = False

    def command(self) -> list[Any]:
        """The complete command that reports it."""
        return frames.complete(self.unit, self.path, self.attempt, self.ok, self.payload,
                               self.error, self.no_retry)


class _Refused(Exception):
    """An attempt that can never succeed, whatever the retries."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.exc = exc


def prepare(host: ExecutorHost, ev: list[Any]) -> tuple[Definition, Execution, tuple[Any, ...],
                                                       dict[str, Any]]:
    """Look up the definition and decode arguments of a delivery event."""
    unit, path = ev[frames.DELIVER_UNIT], ev[frames.DELIVER_PATH]
    name, args = ev[frames.DELIVER_NAME], ev[frames.DELIVER_ARGS]
    defn = host.registry.get(name)
    if defn is None:
        raise _Refused(host.unknown(name))
    try:
        a, kw = codec.decode(args)
    except codec.CodecError as exc:
        raise _Refused(codec.with_context(exc, f"arguments of {name} ({unit}/{path})")) from exc
    if not isinstance(a, (list, tuple)) or not isinstance(kw, dict):
        raise _Refused(codec.MalformedPayloadError(
            f"arguments of {name} ({unit}/{path}) are not an (args, kwargs) pair"))
    ex = Execution(host, unit, path, ev[frames.DELIVER_DEPTH], name, ev[frames.DELIVER_LANE],
                   host.services, ev[frames.DELIVER_ATTEMPT])
    if defn.wants_services:
        kw = dict(kw)
        kw["services"] = host.services
    return defn, ex, tuple(a), kw


def error_frame(exc: BaseException) -> list[Any]:
    """Encode an exception as the core's error frame."""
    info = codec.encode_exception(exc)
    return frames.error(info["type"], info["message"], info["traceback"], info["payload"])


def _encode_result(host: ExecutorHost, defn: Definition, ex: Execution, value: Any) -> bytes:
    try:
        return codec.encode(value, host.max_value_bytes)
    except codec.CodecError as exc:
        context = f"result of {defn.name} ({ex.unit}/{ex.path})"
        raise _Refused(codec.with_context(exc, context)) from exc


def _failed(ev: list[Any], exc: BaseException, no_retry: bool,
            defn: Definition | None = None) -> Outcome:
    # Every attempt that fails is logged here, where its exception is at hand.
    attempt_failed(defn.kind if defn is not None else "operation", ev[frames.DELIVER_NAME],
                   ev[frames.DELIVER_UNIT], ev[frames.DELIVER_PATH], ev[frames.DELIVER_ATTEMPT],
                   defn.options.retries if defn is not None else 0, exc, no_retry)
    return Outcome(ev[frames.DELIVER_UNIT], ev[frames.DELIVER_PATH], ev[frames.DELIVER_ATTEMPT],
                   False, error=error_frame(exc), no_retry=no_retry)


async def run_async(host: ExecutorHost, ev: list[Any]) -> Outcome:
    """Run an async-lane delivery on the current event loop.

    If the task running this is cancelled (the run was cancelled or timed out,
    the lease was lost, or the app is stopping) the cancellation propagates and
    there is no outcome: the core expects no completion.
    """
    token = None
    defn = None
    try:
        defn, ex, args, kwargs = prepare(host, ev)
        if not defn.is_async:
            raise _Refused(DefinitionError(f"{defn.name} is not async but was queued as async"))
        token = current.set(ex)
        value = await defn.fn(*args, **kwargs)
        payload = _encode_result(host, defn, ex, value)
    except _Refused as r:
        return _failed(ev, r.exc, True, defn)
    except Exception as exc:  # noqa: BLE001 - the step's failure is its result
        return _failed(ev, exc, False, defn)
    finally:
        if token is not None:
            current.reset(token)
    return Outcome(ev[frames.DELIVER_UNIT], ev[frames.DELIVER_PATH], ev[frames.DELIVER_ATTEMPT],
                   True, payload)


def run_blocking(host: ExecutorHost, ev: list[Any], thread_loop: asyncio.AbstractEventLoop | None
                 ) -> tuple[Outcome, asyncio.AbstractEventLoop | None]:
    """Run a blocking-lane delivery on this worker thread.

    ``async def`` steps marked BLOCKING run on this thread's own event loop,
    created on first use and returned for reuse.
    """
    token = None
    defn = None
    try:
        defn, ex, args, kwargs = prepare(host, ev)
        token = current.set(ex)
        if defn.is_async:
            if thread_loop is None:
                thread_loop = asyncio.new_event_loop()
            value = thread_loop.run_until_complete(defn.fn(*args, **kwargs))
        else:
            value = defn.fn(*args, **kwargs)
        payload = _encode_result(host, defn, ex, value)
    except _Refused as r:
        return _failed(ev, r.exc, True, defn), thread_loop
    except Exception as exc:  # noqa: BLE001 - the step's failure is its result
        return _failed(ev, exc, False, defn), thread_loop
    finally:
        if token is not None:
            current.reset(token)
    return Outcome(ev[frames.DELIVER_UNIT], ev[frames.DELIVER_PATH], ev[frames.DELIVER_ATTEMPT],
                   True, payload), thread_loop
