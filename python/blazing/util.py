"""``log_breadcrumb``: a note on the timeline of the operation that is running."""

from __future__ import annotations

import time
from typing import Any

from blazing import codec
from blazing.context import current
from blazing.errors import BlazingError, ValueTooLargeError

__all__ = ["log_breadcrumb", "MAX_METADATA_BYTES"]

#: The most a breadcrumb's encoded metadata may take.
MAX_METADATA_BYTES = 16 * 1024


def log_breadcrumb(message: str, metadata: dict[str, Any] | None = None, *,
                   operation_id: str | None = None) -> None:
    """Record ``message`` (and ``metadata``, any values the codec encodes) on the
    timeline of the current operation, or of ``operation_id`` ("<unit>/<path>", or a
    unit id for its root) of the same app. It never waits on the store: the note goes
    with the engine's next batch. ``blazing breadcrumbs <unit_id>`` and
    ``app.breadcrumbs(unit_id)`` show it beside the engine's own events.

    Raises ``BlazingError`` outside a running workflow or step (there is nothing to
    attach the note to and no app to send it through), ``TypeError`` for a message that
    is not a str, and ``ValueTooLargeError`` for metadata over 16 KiB encoded.
    """
    if not isinstance(message, str):
        raise TypeError(f"a breadcrumb's message is a str, not {type(message).__name__}")
    ex = current.get()
    if ex is None:
        raise BlazingError(
            "log_breadcrumb() records against the running workflow or step: call it from "
            "inside one")
    unit, path = ex.unit, ex.path
    if operation_id is not None:
        if not isinstance(operation_id, str) or not operation_id:
            raise TypeError(f"operation_id is a str such as 'unit/path', not {operation_id!r}")
        unit, _, path = operation_id.partition("/")
        path = path or "0"
    data = None
    if metadata is not None:
        try:
            data = codec.encode(metadata, MAX_METADATA_BYTES)
        except ValueTooLargeError as exc:
            raise ValueTooLargeError(
                f"breadcrumb metadata of {ex.name} ({unit}/{path}) is over "
                f"{MAX_METADATA_BYTES} bytes encoded: {exc}") from exc
    ex.host.breadcrumb(unit, path, int(time.time() * 1000), message, data)
