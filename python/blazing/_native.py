"""The ctypes bridge to ``libblazing.so``, the Go core.

The library is loaded lazily, on first use, in the process that uses it: a Go
runtime does not survive ``fork()``, so a forked child that touches it gets a
:class:`ForkedProcessError` instead of a hang. ctypes releases the GIL for the
duration of every call, so a thread blocked in :meth:`Session.wait` does not
hold up Python.

Every call exchanges msgpack frames (see ``core/frames``); errors come back as
negative codes plus a message and are raised as :class:`NativeError` (a store
that cannot be reached or refuses this process as :class:`StoreUnavailable`, one
that does not answer in time as :class:`StoreTimeout`).
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path
from typing import Any

import msgpack

from blazing.errors import (
    EngineClosedError,
    ForkedProcessError,
    NativeError,
    NativeLibraryError,
    StoreTimeout,
    StoreUnavailable,
)
from blazing.frames import REPLY_ERRORS, REPLY_EVENTS

# Reply codes, mirrored from cgo/main.go.
_RC_OK = 0
_RC_BIG = 1
_CODES = {
    -1: "invalid",
    -2: "not_found",
    -3: "closed",
    -4: "internal",
    -5: "panic",
    -6: "bad_handle",
    -7: "conflict",
    -8: "unavailable",
    -9: "timeout",
}

_BUF_SIZE = 256 * 1024

_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()
_loaded_pid: int | None = None
_tls = threading.local()


def library_path() -> Path:
    """Where the library is looked for (``BLAZING_LIB`` overrides)."""
    override = os.environ.get("BLAZING_LIB")
    if override:
        return Path(override)
    return Path(__file__).with_name("libblazing.so")


def _after_fork_in_child() -> None:
    # The child inherits the mapped library but none of the Go runtime's
    # threads; any call into it could deadlock. Refuse instead.
    global _lib
    if _lib is not None:
        _lib = None


os.register_at_fork(after_in_child=_after_fork_in_child)


def _load() -> ctypes.CDLL:
    global _lib, _loaded_pid
    lib = _lib
    if lib is not None:
        return lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        if _loaded_pid is not None and _loaded_pid != os.getpid():
            raise ForkedProcessError(
                f"process {os.getpid()} was forked from {_loaded_pid} after the Blazing core "
                "was loaded; a Go runtime does not survive fork(). Start workers with "
                "spawn/exec (multiprocessing 'spawn', subprocess) and create the app there."
            )
        path = library_path()
        if not path.exists():
            raise NativeLibraryError(
                f"{path} not found: the Go core is not built. Run `make setup` or "
                "`pip install -e .` (needs Go >= 1.22) from the repository root."
            )
        try:
            lib = ctypes.CDLL(str(path))
        except OSError as exc:
            raise NativeLibraryError(f"cannot load {path}: {exc}") from exc
        _declare(lib)
        _lib = lib
        _loaded_pid = os.getpid()
        return lib


def _declare(lib: ctypes.CDLL) -> None:
    c_char_p, c_int, c_ll = ctypes.c_char_p, ctypes.c_int, ctypes.c_longlong
    p_int, p_void = ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_void_p)
    lib.bz_version.argtypes = [c_char_p, c_int, p_int]
    lib.bz_version.restype = c_int
    lib.bz_open.argtypes = [c_char_p, c_int, c_char_p, c_int, p_int]
    lib.bz_open.restype = c_ll
    lib.bz_batch.argtypes = [c_ll, c_char_p, c_int, c_char_p, c_int, p_int, p_void]
    lib.bz_batch.restype = c_int
    lib.bz_wait.argtypes = [c_ll, c_int, c_char_p, c_int, p_int, p_void]
    lib.bz_wait.restype = c_int
    lib.bz_get.argtypes = [c_ll, c_char_p, c_int, c_char_p, c_int, p_int, p_void]
    lib.bz_get.restype = c_int
    lib.bz_query.argtypes = [c_ll, c_char_p, c_int, c_char_p, c_int, p_int, p_void]
    lib.bz_query.restype = c_int
    lib.bz_stats.argtypes = [c_ll, c_char_p, c_int, p_int, p_void]
    lib.bz_stats.restype = c_int
    lib.bz_close.argtypes = [c_ll, c_char_p, c_int, p_int]
    lib.bz_close.restype = c_int
    lib.bz_notify.argtypes = [c_ll, c_int, c_char_p, c_int, p_int]
    lib.bz_notify.restype = c_int
    lib.bz_free.argtypes = [ctypes.c_void_p]
    lib.bz_free.restype = None


class _Buffers:
    """Per-thread reply buffers, so concurrent calls never share one."""

    __slots__ = ("out", "outn", "big")

    def __init__(self) -> None:
        self.out = ctypes.create_string_buffer(_BUF_SIZE)
        self.outn = ctypes.c_int(0)
        self.big = ctypes.c_void_p(None)


def _buffers() -> _Buffers:
    b = getattr(_tls, "b", None)
    if b is None:
        b = _tls.b = _Buffers()
    return b


def _take(lib: ctypes.CDLL, rc: int, b: _Buffers) -> bytes:
    if rc == _RC_OK:
        return ctypes.string_at(b.out, b.outn.value)
    if rc == _RC_BIG:
        ptr = b.big.value
        try:
            return ctypes.string_at(ptr, b.outn.value)
        finally:
            lib.bz_free(ptr)
            b.big.value = None
    message = ctypes.string_at(b.out, b.outn.value).decode("utf-8", "replace")
    code = _CODES.get(rc, "internal")
    if code in ("closed", "bad_handle"):
        # A closed session's handle is gone from the core: both mean "stopped".
        raise EngineClosedError(message or "the engine is stopped")
    if code == "timeout":
        # Reached, but no answer within connect_timeout: a ConnectionError and a TimeoutError.
        raise StoreTimeout(message or "the store did not answer in time")
    if code == "unavailable":
        # Unreachable, refusing the credentials, or failing TLS: the message says which.
        raise StoreUnavailable(message or "the store cannot be reached")
    raise NativeError(message or f"native call failed with code {rc}", code)


def version() -> str:
    """The core's version string."""
    lib = _load()
    b = _buffers()
    rc = lib.bz_version(b.out, _BUF_SIZE, ctypes.byref(b.outn))
    return _take(lib, rc, b).decode()


class Session:
    """One engine inside the Go core: an inbox, leases, slots per lane."""

    __slots__ = ("_lib", "_h", "_closed")

    def __init__(self, config: dict[str, Any]) -> None:
        lib = _load()
        frame = msgpack.packb(config)
        b = _buffers()
        h = lib.bz_open(frame, len(frame), b.out, _BUF_SIZE, ctypes.byref(b.outn))
        if h < 0:
            _take(lib, int(h), b)  # raises
            raise NativeError(f"bz_open failed with code {h}")
        self._lib = lib
        self._h = h
        self._closed = False

    def _lib_checked(self) -> ctypes.CDLL:
        if _lib is None:
            raise ForkedProcessError(
                "this Blazing engine belongs to the parent process; a forked child cannot use it"
            )
        return self._lib

    def _frame_call(self, fn_name: str, frame: bytes) -> bytes:
        lib = self._lib_checked()
        b = _buffers()
        rc = getattr(lib, fn_name)(
            self._h, frame, len(frame), b.out, _BUF_SIZE, ctypes.byref(b.outn), ctypes.byref(b.big)
        )
        return _take(lib, rc, b)

    def batch_raw(self, frame: bytes) -> bytes:
        """Send an encoded command batch; return the encoded reply."""
        return self._frame_call("bz_batch", frame)

    def batch(self, commands: list[Any]) -> tuple[list[Any], list[Any]]:
        """Run commands; return (errors, events)."""
        reply = msgpack.unpackb(self.batch_raw(msgpack.packb(commands)))
        return reply[REPLY_ERRORS], reply[REPLY_EVENTS]

    def wait(self, timeout_ms: int) -> list[Any]:
        """Block (without the GIL) up to ``timeout_ms`` for events."""
        lib = self._lib_checked()
        b = _buffers()
        rc = lib.bz_wait(
            self._h, timeout_ms, b.out, _BUF_SIZE, ctypes.byref(b.outn), ctypes.byref(b.big)
        )
        return msgpack.unpackb(_take(lib, rc, b))[REPLY_EVENTS]

    def get_raw(self, frame: bytes) -> bytes:
        """Read one operation record; ``frame`` is msgpack ``[unit, path]``."""
        return self._frame_call("bz_get", frame)

    def get(self, unit: str, path: str) -> list[Any]:
        """Read one operation record as a list (see ``core/frames``)."""
        return msgpack.unpackb(self.get_raw(msgpack.packb([unit, path])))

    def query(self, query: list[Any]) -> Any:
        """An operator query: ``[1, offset, limit]`` failed runs, ``[2, unit]`` requeue."""
        return msgpack.unpackb(self._frame_call("bz_query", msgpack.packb(query)))

    def stats(self) -> list[Any]:
        """Per lane: [depth, oldest_age_ms, running, capacity, inflight]."""
        lib = self._lib_checked()
        b = _buffers()
        rc = lib.bz_stats(self._h, b.out, _BUF_SIZE, ctypes.byref(b.outn), ctypes.byref(b.big))
        return msgpack.unpackb(_take(lib, rc, b))

    def set_notify(self, fd: int) -> None:
        """Have the core write to eventfd ``fd`` when events are queued (-1: stop).

        The caller keeps ``fd`` open until it turns this off or closes the session.
        """
        lib = self._lib_checked()
        b = _buffers()
        rc = lib.bz_notify(self._h, fd, b.out, _BUF_SIZE, ctypes.byref(b.outn))
        _take(lib, rc, b)

    def close(self) -> None:
        """Stop the engine; blocked :meth:`wait` calls return."""
        if self._closed:
            return
        self._closed = True
        lib = self._lib_checked()
        b = _buffers()
        rc = lib.bz_close(self._h, b.out, _BUF_SIZE, ctypes.byref(b.outn))
        _take(lib, rc, b)
