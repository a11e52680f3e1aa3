"""Records of runs and operations as the store keeps them, for operators."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from blazing import frames


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
        """Decode the core's operation frame (see :mod:`blazing.frames`)."""
        err = rec[frames.OP_ERROR]
        lane = rec[frames.OP_LANE]
        status = rec[frames.OP_STATUS]
        return cls(
            unit_id=rec[frames.OP_UNIT], path=rec[frames.OP_PATH], parent=rec[frames.OP_PARENT],
            depth=rec[frames.OP_DEPTH], name=rec[frames.OP_NAME],
            lane=frames.LANE_NAMES[lane] if 0 <= lane < len(frames.LANE_NAMES) else str(lane),
            status=frames.STATUS_NAMES.get(status, str(status)),
            attempts=rec[frames.OP_ATTEMPTS], worker=rec[frames.OP_WORKER],
            created_at=_time(rec[frames.OP_CREATED]), started_at=_time(rec[frames.OP_STARTED]),
            finished_at=_time(rec[frames.OP_FINISHED]),
            error_type=err[frames.ERR_TYPE] if err else None,
            error_message=err[frames.ERR_MESSAGE] if err else None,
            error_traceback=err[frames.ERR_TRACEBACK] if err else None,
        )
