"""Looking runs up by id: one typed error for an id that names no run.

The Go core answers a read, watch, cancel or requeue of an unknown operation
with native error code ``not_found``; callers of the public API get
:class:`~blazing.errors.RunNotFound` (a ``LookupError``) naming the id instead,
and an id that is not a string is refused before it reaches the core.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from blazing.errors import NativeError, RunNotFound

NOT_FOUND = "not_found"


def check_unit_id(unit_id: object) -> str:
    """Return ``unit_id`` if it is a run id (a str); raise ``TypeError`` otherwise."""
    if not isinstance(unit_id, str):
        raise TypeError(
            f"a run id is a str (RemoteRun.unit_id), not {type(unit_id).__name__} {unit_id!r}")
    return unit_id


def run_not_found(unit_id: str) -> RunNotFound:
    """The error for a run id the store does not know."""
    return RunNotFound(
        f"no run {unit_id!r} in this app's store: never submitted to it, expired after "
        "its retention, or gone with the embedded store of an app that was stopped")


@contextmanager
def looking_up(unit_id: str) -> Iterator[None]:
    """Turn the core's ``not_found`` for ``unit_id`` into :class:`RunNotFound`."""
    try:
        yield
    except NativeError as exc:
        if exc.code != NOT_FOUND:
            raise
        # The core's own message ("get <id>/0: not found") adds nothing.
        raise run_not_found(unit_id) from None
