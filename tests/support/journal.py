"""Reading the step journal written by tests/apps/durable.py."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    """One journal line."""

    kind: str  # "start" or "end"
    unit: str
    path: str
    name: str
    attempt: int
    pid: int


def read(path: Path) -> list[Entry]:
    """All entries, in the order they were written."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        kind, unit, p, name, attempt, pid = line.split()
        out.append(Entry(kind, unit, p, name, int(attempt), int(pid)))
    return out


def starts_by_op(entries: list[Entry]) -> dict[tuple[str, str], list[Entry]]:
    """Executions started, per (unit, path)."""
    out: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    for e in entries:
        if e.kind == "start":
            out[(e.unit, e.path)].append(e)
    return out
