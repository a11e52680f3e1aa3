"""The optimizer's decisions as the monitoring tools show them.

On Redis, :meth:`Inspector.decisions` returns each decision as the foreman recorded
it in its stream: a dict of strings (``time`` in Unix ms, ``before_async``,
``async_urgency``, ``applied``, ...). The embedded optimizer's come as nested values
(``time`` in Unix seconds, ``before: {async, blocking}``, ``async: {urgency, ...}``).
:func:`parse` reads both into one :class:`Decision`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

LANES = ("async", "blocking")


def _num(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True)
class Decision:
    """One optimizer tick: what it did to the mix, why, and the urgencies it saw."""

    at: datetime
    foreman: str
    action: str
    from_lane: str
    to_lane: str
    count: int
    reason: str
    detail: str
    before: dict[str, int]
    after: dict[str, int]
    urgency: dict[str, float]
    depth: dict[str, int]
    applied: bool | None  # None: not recorded (the embedded optimizer always applies)
    fields: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def changed(self) -> bool:
        """Whether the decision changes the mix."""
        return self.before != self.after

    def summary(self) -> str:
        """The action in words: "hold", "move 1 async→blocking", "grow 2 →async"."""
        if self.action in ("move", "grow", "shrink"):
            return f"{self.action} {self.count} {self.from_lane}→{self.to_lane}"
        return self.action

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"at": self.at.isoformat(), "foreman": self.foreman, "action": self.action,
                "from": self.from_lane, "to": self.to_lane, "count": self.count,
                "reason": self.reason, "detail": self.detail, "before": self.before,
                "after": self.after, "urgency": self.urgency, "depth": self.depth,
                "applied": self.applied}


def parse(d: dict[str, Any]) -> Decision:
    """A decision from either shape the inspector returns."""
    nested = isinstance(d.get("before"), dict)
    if nested:
        at = datetime.fromtimestamp(_num(d.get("time")), tz=timezone.utc)
        before = {lane: int(_num(d["before"].get(lane))) for lane in LANES}
        after = {lane: int(_num((d.get("after") or {}).get(lane))) for lane in LANES}
        urgency = {lane: _num((d.get(lane) or {}).get("urgency")) for lane in LANES}
        depth = {lane: int(_num((d.get(lane) or {}).get("depth"))) for lane in LANES}
        applied = None
    else:
        at = datetime.fromtimestamp(_num(d.get("time")) / 1000, tz=timezone.utc)
        before = {lane: int(_num(d.get(f"before_{lane}"))) for lane in LANES}
        after = {lane: int(_num(d.get(f"after_{lane}"))) for lane in LANES}
        urgency = {lane: _num(d.get(f"{lane}_urgency")) for lane in LANES}
        depth = {lane: int(_num(d.get(f"{lane}_depth"))) for lane in LANES}
        applied = {"true": True, "false": False}.get(str(d.get("applied", "")).lower())
    return Decision(at=at, foreman=str(d.get("foreman") or ""), action=str(d.get("action", "")),
                    from_lane=str(d.get("from") or ""), to_lane=str(d.get("to") or ""),
                    count=int(_num(d.get("count"))), reason=str(d.get("reason", "")),
                    detail=str(d.get("detail", "")), before=before, after=after,
                    urgency=urgency, depth=depth, applied=applied, fields=dict(d))
