"""The operator's read path: what the store says about runs, apart from the runtime.

An :class:`Inspector` works over an open core session and nothing else: the app
uses the one of its runtime's session; the ``blazing`` console script opens a
session of its own and never starts a runtime (no workers, no event loop).
"""

from __future__ import annotations

from typing import Any, Protocol

from blazing import frames
from blazing.lookup import check_unit_id, looking_up
from blazing.records import OperationRecord


class Reader(Protocol):
    """What the inspector needs of a core session (``blazing._native.Session``)."""

    def get(self, unit: str, path: str) -> list[Any]: ...  # noqa: D102
    def query(self, query: list[Any]) -> Any: ...  # noqa: D102
    def stats(self) -> list[Any]: ...  # noqa: D102


class Inspector:
    """Read-only calls (and requeue) against the store of one session."""

    def __init__(self, session: Reader) -> None:
        self._session = session

    def record(self, unit_id: str, path: str = "0") -> OperationRecord:
        """The full record of an operation (``RunNotFound`` for an unknown one)."""
        check_unit_id(unit_id)
        with looking_up(unit_id):
            return OperationRecord.from_frame(self._session.get(unit_id, path))

    def status(self, unit_id: str, path: str = "0") -> str:
        """Status name of an operation: pending, running, succeeded, failed, cancelled."""
        check_unit_id(unit_id)
        with looking_up(unit_id):
            status = self._session.get(unit_id, path)[frames.OP_STATUS]
        return frames.STATUS_NAMES.get(status, str(status))

    def failed_runs(self, limit: int = 50, offset: int = 0) -> list[OperationRecord]:
        """The dead letters: failed runs, most recent first."""
        rows = self._session.query(frames.query_failed(offset, limit))
        return [OperationRecord.from_frame(r) for r in rows]

    def requeue(self, unit_id: str) -> None:
        """Run a failed or cancelled run again; steps that succeeded are not re-run."""
        check_unit_id(unit_id)
        with looking_up(unit_id):
            self._session.query(frames.query_requeue(unit_id))

    def counters(self) -> dict[str, Any]:
        """What this process ran: started/succeeded/failed/retried, duration histogram."""
        started, ok, failed, retried, total, buckets = self._session.query(
            frames.query_counters())
        return {"started": started, "succeeded": ok, "failed": failed, "retried": retried,
                "duration_sum": total, "duration_buckets": buckets}

    def decisions(self) -> list[dict[str, Any]]:
        """The embedded optimizer's latest decisions (at most 256), oldest first."""
        return list(self._session.query(frames.query_decisions()))

    def stats(self) -> dict[str, dict[str, float]]:
        """Per lane: depth, oldest_age_ms, running, capacity, inflight."""
        return {lane: dict(zip(frames.STATS_FIELDS, row, strict=True))
                for lane, row in zip(frames.LANE_NAMES, self._session.stats(), strict=True)}
