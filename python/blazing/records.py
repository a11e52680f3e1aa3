"""Records of runs and operations as the store keeps them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from blazing.run import STATUS_NAMES

LANES = ("async", "blocking")


def _time(ns: int) -> datetime | None:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc) if ns else None


@dataclass(frozen=True)
class OperationRecord:
    """One operation (a run's root, or one step call) and how it went."""

    unit_id: str
    path: str
    parent: str
    depth: int
    name: str
    lane: str
    status: str
    attempts: int
    worker: str
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error_type: str | None
    error_message: str | None
    error_traceback: str | None

    @classmethod
    def from_frame(cls, rec: list[Any]) -> OperationRecord:
        """Decode the core's operation frame (see core/frames Writer.Operation)."""
        err = rec[13]
        return cls(
            unit_id=rec[0], path=rec[1], parent=rec[2], depth=rec[3], name=rec[4],
            lane=LANES[rec[5]] if 0 <= rec[5] < len(LANES) else str(rec[5]),
            status=STATUS_NAMES.get(rec[6], str(rec[6])), attempts=rec[7], worker=rec[8],
            created_at=_time(rec[9]), started_at=_time(rec[10]), finished_at=_time(rec[11]),
            error_type=err[0] if err else None, error_message=err[1] if err else None,
            error_traceback=err[2] if err else None,
        )
