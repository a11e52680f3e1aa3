"""Exception types raised by Blazing Flow.

User exceptions raised inside steps and workflows are re-raised to callers with
their original type; the types here describe what the engine itself refuses.
"""

from __future__ import annotations

from blazing.codec import (
    CodecError,
    MalformedPayloadError,
    RemoteError,
    RemoteTraceback,
    SerializationError,
    SignatureError,
    ValueTooLargeError,
)

__all__ = [
    "BlazingError",
    "CodecError",
    "ConfigurationError",
    "ConnectorConfigError",
    "ConnectorError",
    "ConnectorUnavailable",
    "DefinitionError",
    "EngineClosedError",
    "ForkedProcessError",
    "LeaseLost",
    "MalformedPayloadError",
    "NativeError",
    "NativeLibraryError",
    "RemoteError",
    "RemoteTraceback",
    "RunCancelled",
    "RunLost",
    "RunNotFound",
    "SerializationError",
    "SignatureError",
    "StoreFull",
    "StoreTimeout",
    "StoreUnavailable",
    "WorkerLost",
    "UnknownNameError",
    "ValueTooLargeError",
]


class BlazingError(Exception):
    """Base class of the engine's own errors."""


class DefinitionError(BlazingError, ValueError):
    """A decorator was used in a way this runtime does not offer (raised at decoration)."""


class ConfigurationError(BlazingError, ValueError):
    """An app option or environment variable has a value that cannot be used."""


class UnknownNameError(BlazingError, LookupError, AttributeError):
    """No workflow or step of that name is registered with the app."""


class RunCancelled(BlazingError):
    """The run (or the step call) was cancelled before it finished.

    It is an ``Exception``, not ``asyncio.CancelledError``, so that awaiting a
    cancelled run never cancels the awaiting task by accident.
    """


class LeaseLost(BlazingError):
    """This process lost the lease on an operation; it runs elsewhere now."""


class NativeError(BlazingError):
    """The Go core refused a call; ``code`` names why."""

    def __init__(self, message: str, code: str = "internal") -> None:
        super().__init__(message)
        self.code = code


class StoreUnavailable(BlazingError, ConnectionError):
    """The store could not be reached (or refused this process's credentials)."""


class StoreTimeout(StoreUnavailable, TimeoutError):
    """The store accepted the connection but did not answer within ``connect_timeout``.

    Both a ``ConnectionError`` and a ``TimeoutError``: ``except`` either catches it.
    """


class StoreFull(BlazingError):
    """The store refused a write because it is out of memory (Redis at ``maxmemory``).

    Nothing was written: the submission can be made again once memory is freed.
    """


class RunLost(BlazingError):
    """The store lost the records of a run (for example a Redis restarted without its data).

    The run cannot finish: submit it again if it should still happen.
    """


class RunNotFound(BlazingError, LookupError):
    """No run (or operation) with that id exists in the store (never made, or expired)."""


class WorkerLost(BlazingError):
    """An operation kept losing its worker (its lease lapsed too many times)."""


class NativeLibraryError(BlazingError, ImportError):
    """``libblazing.so`` could not be found or loaded."""


class ForkedProcessError(BlazingError, RuntimeError):
    """The Go core was used in a child made by ``fork()``; a Go runtime does not survive fork."""


class ConnectorError(BlazingError):
    """A connector (``blazing.connectors``) failed; the message names the connector."""


class ConnectorConfigError(ConnectorError, ConfigurationError):
    """A connector's settings cannot be used (a bad option, a missing key file, an
    unknown ``target_class_name``, a host that does not resolve, a library not installed)."""


class ConnectorUnavailable(ConnectorError, ConnectionError):
    """A connector could not (re)connect to its server within its reconnect timeout."""


class EngineClosedError(NativeError):
    """The app's engine is stopped."""

    def __init__(self, message: str = "the engine is stopped") -> None:
        super().__init__(message, "closed")


def positional_arguments_error(app_class: str, args: tuple[object, ...]) -> TypeError:
    """The error for ``Blazing("redis://...")``: the app takes keyword arguments only,
    and the message says which keyword a URL goes to."""
    from blazing.settings import redact  # settings imports this module

    first = args[0]
    if isinstance(first, str) and "://" in first:
        return TypeError(f"{app_class}() takes keyword arguments only: pass the URL as "
                         f"{app_class}(redis_url={redact(first)!r}) (or set BLAZING_REDIS_URL)")
    return TypeError(f"{app_class}() takes keyword arguments only (got {len(args)} positional: "
                     f"{', '.join(repr(a)[:60] for a in args)}); e.g. {app_class}(redis_url=..., "
                     "namespace=...)")


def from_native(message: str, code: str) -> BlazingError:
    """The exception for an error the core reported with ``code``: typed where the
    code says what happened (no such run, the store is full, a run was lost), else
    NativeError."""
    if code == "not_found":
        return RunNotFound(message)
    if code == "full":
        return StoreFull(message)
    if code == "lost":
        return RunLost(message)
    if code == "timeout":
        return StoreTimeout(message)
    if code == "unavailable":
        return StoreUnavailable(message)
    return NativeError(message, code)
