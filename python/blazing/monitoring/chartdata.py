"""What the foreman charts plot, as data: per machine the worker mix over time, per
lane the queue depth and oldest age, and the optimizer's decisions in the window.

Built from :meth:`Inspector.series` and :meth:`Inspector.decisions`; the terminal,
PNG and HTML outputs all draw one :class:`ChartData`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from blazing.inspector import Inspector
from blazing.monitoring.decision import LANES, Decision, parse

FINE_KEEP_S = 3600  # the fine series (a sample per beat) keeps an hour; beyond, minutes


@dataclass(frozen=True)
class MixSeries:
    """One machine's workers per lane over time (from its foreman's samples), those
    draining left out."""

    label: str
    foreman: str
    times: list[datetime]
    workers: dict[str, list[float]]  # lane -> workers at each time


@dataclass(frozen=True)
class LaneSeries:
    """One lane's queue over time (every foreman sees the same lanes)."""

    lane: str
    times: list[datetime]
    depth: list[float]
    oldest_s: list[float]


@dataclass(frozen=True)
class ChartData:
    """Everything a chart shows, for one window of time."""

    since: datetime
    until: datetime
    coarse: bool
    machines: list[MixSeries]
    lanes: list[LaneSeries]
    decisions: list[Decision]  # in the window, oldest first
    samples: int

    @property
    def empty(self) -> bool:
        """No foreman sampled anything in the window."""
        return self.samples == 0

    @property
    def changes(self) -> list[Decision]:
        """The decisions that changed (or would have changed) the mix."""
        return [d for d in self.decisions if d.changed]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``blazing charts -o json``)."""
        def iso(ts: list[datetime]) -> list[str]:
            return [t.isoformat() for t in ts]

        return {
            "since": self.since.isoformat(), "until": self.until.isoformat(),
            "coarse": self.coarse, "samples": self.samples,
            "machines": [{"label": m.label, "foreman": m.foreman, "times": iso(m.times),
                          "workers": m.workers} for m in self.machines],
            "lanes": [{"lane": ln.lane, "times": iso(ln.times), "depth": ln.depth,
                       "oldest_s": ln.oldest_s} for ln in self.lanes],
            "decisions": [d.as_dict() for d in self.decisions],
        }


def build(samples: list[dict[str, Any]], decisions: list[dict[str, Any]], since: datetime,
          until: datetime, coarse: bool) -> ChartData:
    """Chart data from samples (oldest first) and decisions as the inspector gives them."""
    samples = sorted(samples, key=lambda s: s["at"])
    by_foreman: dict[str, list[dict[str, Any]]] = {}
    for s in samples:
        by_foreman.setdefault(s["foreman"], []).append(s)
    hosts = [ss[0]["host"] for ss in by_foreman.values()]
    machines = []
    for foreman, ss in sorted(by_foreman.items(), key=lambda kv: (kv[1][0]["host"], kv[0])):
        host = ss[0]["host"]
        # A host with two foremen (a restart) is told apart by the foreman's id.
        label = host if hosts.count(host) == 1 else f"{host} ({foreman})"
        # Draining workers are on their way out: the mix is the others.
        machines.append(MixSeries(label=label, foreman=foreman, times=[s["at"] for s in ss],
                                  workers={lane: [float(s[lane]["workers"] - s[lane]["draining"])
                                                  for s in ss] for lane in LANES}))
    lanes = [LaneSeries(lane=lane, times=[s["at"] for s in samples],
                        depth=[float(s[lane]["depth"]) for s in samples],
                        oldest_s=[float(s[lane]["oldest_s"]) for s in samples])
             for lane in LANES]
    parsed = sorted((parse(d) for d in decisions), key=lambda d: d.at)
    return ChartData(since=since, until=until, coarse=coarse, machines=machines, lanes=lanes,
                     decisions=[d for d in parsed if since <= d.at <= until],
                     samples=len(samples))


def read(ins: Inspector, since: datetime, coarse: bool | None = None) -> ChartData:
    """Read the window from ``since`` to now; coarse (minute averages) when asked, or
    by default when the window is longer than the fine series keeps."""
    until = datetime.now(timezone.utc)
    if coarse is None:
        coarse = (until - since).total_seconds() > FINE_KEEP_S
    return build(ins.series(since=since, coarse=coarse), ins.decisions(), since, until, coarse)
