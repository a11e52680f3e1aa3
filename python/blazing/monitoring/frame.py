"""One btop frame as data: what the dashboard shows at one moment, read through an
:class:`~blazing.inspector.Inspector`.

``btop --once`` prints a frame as text, the Textual app draws the same frame, and
tests check its numbers. Nothing here draws or needs a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from blazing.inspector import Inspector
from blazing.monitoring.decision import LANES, Decision, parse
from blazing.records import OperationRecord

TREND_WINDOW_S = 600.0  # the sparklines cover the last 10 minutes ...
TREND_POINTS = 30  # ... in buckets of 20 s
RATE_WINDOW_S = 10.0  # "done/s" now: the foremen's samples of the last 10 s
ERROR_WINDOW_S = 60.0  # error rate: attempts that ended in the last minute
FAILURES_READ = 100  # failed runs read per frame (newest first), before the filter
DECISIONS_KEPT = 20  # latest decisions a frame keeps


@dataclass(frozen=True)
class LaneRow:
    """A lane now, and its trend over the last minutes."""

    name: str
    depth: int
    oldest_s: float
    in_flight: int
    done_per_s: float | None  # None: no foreman sampled the lane lately
    error_rate: float | None  # None: nothing ended in the last minute
    depth_trend: list[float | None]  # oldest first, one per bucket; None: no sample
    done_trend: list[float | None]


@dataclass(frozen=True)
class MachineRow:
    """One foreman (one machine) and its workers."""

    host: str
    foreman: str
    pid: int
    beat_age_s: float | None
    target: dict[str, int]
    states: dict[str, dict[str, int]]  # lane -> state -> workers
    restarts: int
    workers: list[dict[str, Any]] = field(default_factory=list)

    def count(self, lane: str) -> int:
        """Workers of a lane, in any state."""
        return sum(self.states.get(lane, {}).values())


@dataclass(frozen=True)
class FailureRow:
    """A failed run (a dead letter)."""

    unit_id: str
    name: str
    finished_at: datetime | None
    attempts: int
    error_type: str | None
    error_message: str | None

    @classmethod
    def of(cls, r: OperationRecord) -> FailureRow:
        """From the run's root record."""
        return cls(unit_id=r.unit_id, name=r.name, finished_at=r.finished_at,
                   attempts=r.attempts, error_type=r.error_type, error_message=r.error_message)

    @property
    def error(self) -> str:
        """"Type: message", the type without its module."""
        if not self.error_type:
            return self.error_message or ""
        short = self.error_type.rsplit(".", 1)[-1]
        return f"{short}: {self.error_message}" if self.error_message else short


@dataclass(frozen=True)
class Frame:
    """Everything one dashboard frame shows."""

    at: datetime
    lanes: list[LaneRow]
    machines: list[MachineRow]
    failures: list[FailureRow]  # newest first, after the filter
    decisions: list[Decision]  # newest first
    filter: str = ""
    trend_window_s: float = TREND_WINDOW_S

    def lane(self, name: str) -> LaneRow:
        """The row of one lane (KeyError if there is none)."""
        for row in self.lanes:
            if row.name == name:
                return row
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``btop --once -o json``)."""
        def when(t: datetime | None) -> str | None:
            return t.isoformat() if t else None

        return {
            "at": when(self.at), "filter": self.filter, "trend_window_s": self.trend_window_s,
            "lanes": [{"name": r.name, "depth": r.depth, "oldest_s": r.oldest_s,
                       "in_flight": r.in_flight, "done_per_s": r.done_per_s,
                       "error_rate": r.error_rate, "depth_trend": r.depth_trend,
                       "done_trend": r.done_trend} for r in self.lanes],
            "machines": [{"host": m.host, "foreman": m.foreman, "pid": m.pid,
                          "beat_age_s": m.beat_age_s, "target": m.target, "states": m.states,
                          "restarts": m.restarts,
                          "workers": [{k: (when(v) if isinstance(v, datetime) else v)
                                       for k, v in w.items()} for w in m.workers]}
                         for m in self.machines],
            "failures": [{"unit_id": f.unit_id, "name": f.name,
                          "finished_at": when(f.finished_at), "attempts": f.attempts,
                          "error_type": f.error_type, "error_message": f.error_message}
                         for f in self.failures],
            "decisions": [d.as_dict() for d in self.decisions],
        }


class SeriesCache:
    """The foremen's samples of the last ``window_s`` seconds, read incrementally: each
    read asks only for what came since the previous one (with an overlap, since the
    stream is ordered by Redis' clock and the samples carry their foreman's)."""

    OVERLAP_S = 10.0

    def __init__(self, ins: Inspector, window_s: float) -> None:
        self._ins = ins
        self._window = timedelta(seconds=window_s)
        self._samples: list[dict[str, Any]] = []
        self._seen: set[tuple[str, datetime]] = set()

    def read(self, now: datetime) -> list[dict[str, Any]]:
        """The samples of the window ending ``now``, oldest first."""
        start = now - self._window
        if self._samples:
            start = max(start, self._samples[-1]["at"] - timedelta(seconds=self.OVERLAP_S))
        for s in self._ins.series(since=start):
            key = (s["foreman"], s["at"])
            if key not in self._seen:
                self._seen.add(key)
                self._samples.append(s)
        self._samples.sort(key=lambda s: s["at"])
        cut = now - self._window
        while self._samples and self._samples[0]["at"] < cut:
            old = self._samples.pop(0)
            self._seen.discard((old["foreman"], old["at"]))
        return list(self._samples)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _per_foreman_sum(samples: list[dict[str, Any]], lane: str, key: str) -> float | None:
    """A per-machine rate summed over machines: each foreman's mean, added up."""
    by: dict[str, list[float]] = {}
    for s in samples:
        by.setdefault(s["foreman"], []).append(float(s[lane][key]))
    return sum(sum(v) / len(v) for v in by.values()) if by else None


def lane_rows(lanes_now: dict[str, dict[str, float]], samples: list[dict[str, Any]],
              now: datetime, window_s: float = TREND_WINDOW_S,
              points: int = TREND_POINTS) -> list[LaneRow]:
    """Per lane: depth, oldest age and in flight now (from the store), throughput and
    error rate (from the foremen's samples) and trends bucketed over the window."""
    step = window_s / points
    start = now - timedelta(seconds=window_s)
    buckets: list[list[dict[str, Any]]] = [[] for _ in range(points)]
    for s in samples:
        i = int((s["at"] - start).total_seconds() // step)
        if 0 <= i < points:
            buckets[i].append(s)
    recent = [s for s in samples if (now - s["at"]).total_seconds() <= RATE_WINDOW_S]
    last_minute = [s for s in samples if (now - s["at"]).total_seconds() <= ERROR_WINDOW_S]
    rows = []
    for lane in LANES:
        live = lanes_now.get(lane, {})
        done = sum(float(s[lane]["done_per_s"]) for s in last_minute)
        failed = sum(float(s[lane]["failed_per_s"]) for s in last_minute)
        rows.append(LaneRow(
            name=lane, depth=int(live.get("depth", 0)),
            oldest_s=float(live.get("oldest_age_ms", 0)) / 1000,
            in_flight=int(live.get("running", 0)),
            done_per_s=_per_foreman_sum(recent, lane, "done_per_s"),
            error_rate=failed / done if done > 0 else None,
            depth_trend=[_mean([float(s[lane]["depth"]) for s in b]) for b in buckets],
            done_trend=[_per_foreman_sum(b, lane, "done_per_s") for b in buckets]))
    return rows


def machine_rows(foremen: list[dict[str, Any]], now: datetime) -> list[MachineRow]:
    """Per foreman: its machine, beat, target mix, workers by lane and state, restarts."""
    rows = []
    for f in foremen:
        states: dict[str, dict[str, int]] = {lane: {} for lane in LANES}
        for w in f.get("workers") or []:
            lane = states.setdefault(w["lane"], {})
            lane[w["state"]] = lane.get(w["state"], 0) + 1
        beat = f.get("beat")
        rows.append(MachineRow(
            host=f.get("host", ""), foreman=f.get("id", ""), pid=int(f.get("pid") or 0),
            beat_age_s=max((now - beat).total_seconds(), 0.0) if beat else None,
            target={"async": int(f.get("target_async") or 0),
                    "blocking": int(f.get("target_blocking") or 0)},
            states=states, restarts=int(f.get("restarts") or 0),
            workers=list(f.get("workers") or [])))
    return sorted(rows, key=lambda m: (m.host, m.foreman))


def matches(name: str, pattern: str) -> bool:
    """The filter: a case-insensitive substring of the workflow or step name."""
    return not pattern or pattern.lower() in name.lower()


class FrameSource:
    """Builds frames from one inspector, keeping the recent samples between frames."""

    def __init__(self, ins: Inspector, *, window_s: float = TREND_WINDOW_S,
                 points: int = TREND_POINTS) -> None:
        self.ins = ins
        self.window_s = window_s
        self.points = points
        self._series = SeriesCache(ins, window_s)

    def frame(self, pattern: str = "") -> Frame:
        """Read the store and build one frame; failures filtered by ``pattern``."""
        now = datetime.now(timezone.utc)
        lanes_now = self.ins.lanes()
        samples = self._series.read(now)
        foremen = self.ins.fleet()
        failed = self.ins.failed_runs(FAILURES_READ)
        decisions = [parse(d) for d in self.ins.decisions()]
        decisions.sort(key=lambda d: d.at, reverse=True)
        return Frame(
            at=now, lanes=lane_rows(lanes_now, samples, now, self.window_s, self.points),
            machines=machine_rows(foremen, now),
            failures=[FailureRow.of(r) for r in failed if matches(r.name, pattern)],
            decisions=decisions[:DECISIONS_KEPT], filter=pattern,
            trend_window_s=self.window_s)

    def run_detail(self, unit_id: str) -> tuple[list[OperationRecord], Any]:
        """A run's operations and timeline (``RunNotFound`` for an unknown run)."""
        timeline = self.ins.breadcrumbs(unit_id)
        return self.ins.history(unit_id), timeline
