"""Records of runs and operations as the store keeps them, for operators: operations,
timelines (breadcrumbs) and per-step statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from blazing import codec, frames


def _time(ns: int) -> datetime | None:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc) if ns else None


def _ms_time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1e3, tz=timezone.utc)


def preview(value: Any, limit: int = 120) -> str:
    """A value as one short line (``repr``, cut to ``limit`` characters)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


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
    # The encoded arguments and result, as stored (decode with args()/result()).
    raw_args: bytes | None = field(default=None, repr=False, compare=False)
    raw_result: bytes | None = field(default=None, repr=False, compare=False)

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
            raw_args=rec[frames.OP_ARGS] if len(rec) > frames.OP_ARGS else None,
            raw_result=rec[frames.OP_RESULT],
        )

    @property
    def duration(self) -> float | None:
        """Seconds from the start of the last attempt to the end, if both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max((self.finished_at - self.started_at).total_seconds(), 0.0)

    def args(self) -> Any:
        """The call's (args, kwargs), decoded (None if not kept)."""
        return codec.decode(self.raw_args) if self.raw_args else None

    def result(self) -> Any:
        """The result, decoded (None if there is none)."""
        return codec.decode(self.raw_result) if self.raw_result else None

    def as_dict(self, values: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (times in ISO 8601); with ``values``, short previews of the
        arguments and result."""
        out: dict[str, Any] = {
            k: getattr(self, k) for k in (
                "unit_id", "path", "parent", "depth", "name", "lane", "status", "attempts",
                "worker", "error_type", "error_message", "error_traceback")}
        for k in ("created_at", "started_at", "finished_at"):
            t = getattr(self, k)
            out[k] = t.isoformat() if t else None
        out["duration_s"] = self.duration
        if values:
            out["args"] = _safe_preview(self.args)
            out["result"] = _safe_preview(self.result)
        return out


def _safe_preview(read: Any) -> str | None:
    try:
        value = read()
    except Exception as exc:  # noqa: BLE001 - a record shown, not a run: say why not
        return f"<cannot decode: {type(exc).__name__}: {exc}>"
    return None if value is None else preview(value)


@dataclass(frozen=True)
class Breadcrumb:
    """One event of a run's timeline: what its records show (queued, started,
    succeeded, failed, cancelled), what the engine noted (retry, lapse, timeout,
    replay), or what the code logged (user, with its metadata)."""

    at: datetime
    path: str
    kind: str
    message: str
    metadata: Any = None

    @classmethod
    def from_frame(cls, ev: list[Any]) -> Breadcrumb:
        """Decode a timeline event frame."""
        data = ev[frames.EVENT_DATA]
        try:
            meta = codec.decode(data) if data else None
        except codec.CodecError as exc:
            meta = f"<cannot decode: {exc}>"
        return cls(at=_ms_time(ev[frames.EVENT_AT]), path=ev[frames.EVENT_PATH],
                   kind=ev[frames.EVENT_KIND], message=ev[frames.EVENT_MESSAGE], metadata=meta)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"at": self.at.isoformat(), "path": self.path, "kind": self.kind,
                "message": self.message, "metadata": self.metadata}


@dataclass(frozen=True)
class Timeline:
    """A run's breadcrumbs, oldest first, and how many older ones were dropped."""

    unit_id: str
    events: list[Breadcrumb]
    dropped: int = 0


@dataclass(frozen=True)
class StepStats:
    """How the attempts of one step or workflow (or one lane) went in a period."""

    name: str
    succeeded: int
    failed: int
    retried: int
    cancelled: int
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    @property
    def count(self) -> int:
        """Attempts that ended."""
        return self.succeeded + self.failed + self.retried + self.cancelled

    @property
    def error_rate(self) -> float:
        """Failed and retried attempts over all that ended (0 when none did)."""
        return (self.failed + self.retried) / self.count if self.count else 0.0

    @classmethod
    def from_frame(cls, name: str, c: list[Any], bounds: list[float]) -> StepStats:
        """Decode counts, with the histogram's bucket bounds (ms)."""
        buckets = c[frames.COUNT_BUCKETS]
        timed = sum(buckets)
        return cls(name=name, succeeded=c[frames.COUNT_OK], failed=c[frames.COUNT_FAILED],
                   retried=c[frames.COUNT_RETRIED], cancelled=c[frames.COUNT_CANCELLED],
                   mean_ms=c[frames.COUNT_SUM_MS] / timed if timed else None,
                   p50_ms=percentile(buckets, bounds, 0.50),
                   p95_ms=percentile(buckets, bounds, 0.95),
                   p99_ms=percentile(buckets, bounds, 0.99))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"name": self.name, "count": self.count, "succeeded": self.succeeded,
                "failed": self.failed, "retried": self.retried, "cancelled": self.cancelled,
                "error_rate": self.error_rate, "mean_ms": self.mean_ms, "p50_ms": self.p50_ms,
                "p95_ms": self.p95_ms, "p99_ms": self.p99_ms}


def percentile(buckets: list[int], bounds: list[float], q: float) -> float | None:
    """The q-quantile of a histogram (ms), interpolated inside its bucket; None if empty.

    Buckets are a factor √2 apart, so the figure is within that of the truth.
    """
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0.0
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            lo = bounds[i - 1] if 0 < i <= len(bounds) else 0.0
            hi = bounds[i] if i < len(bounds) else bounds[-1] * 2
            return lo + (hi - lo) * (rank - seen) / n
        seen += n
    return bounds[-1] * 2
