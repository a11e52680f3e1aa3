"""Text rendering shared by the console script and btop: a frame's sections as
fixed-width lines, sparklines, and a run's timeline as a tree.

Plain text only: no colour, so nothing is told by colour alone; the same lines are
printed by ``btop --once`` and drawn by the Textual app.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from blazing.monitoring.decision import Decision
from blazing.monitoring.frame import Frame, MachineRow
from blazing.records import Breadcrumb, OperationRecord

MIN_WIDTH, MIN_HEIGHT = 80, 24  # the smallest terminal btop draws in
GUTTER = 2  # every table row starts with two characters: "> " marks the cursor
BARS = "▁▂▃▄▅▆▇█"


def age(seconds: float | None) -> str:
    """A duration, short: 4.2s, 12s, 5m, 1.5h."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def rate(value: float | None) -> str:
    """Per second, one decimal."""
    return "-" if value is None else f"{value:.1f}"


def percent(value: float | None) -> str:
    """A fraction as a percentage."""
    return "-" if value is None else f"{100 * value:.1f}%"


def clock(t: datetime | None) -> str:
    """HH:MM:SS (UTC)."""
    return t.astimezone(timezone.utc).strftime("%H:%M:%S") if t else "-"


def sparkline(values: Sequence[float | None], width: int) -> str:
    """The last ``width`` values as bars scaled to their maximum (a space where there
    was no sample, the lowest bar for zero)."""
    tail = list(values)[-width:] if width > 0 else []
    top = max((v for v in tail if v is not None), default=0.0)
    out = []
    for v in tail:
        if v is None:
            out.append(" ")
        elif top <= 0:
            out.append(BARS[0])
        else:
            out.append(BARS[min(int(v / top * (len(BARS) - 1) + 0.5), len(BARS) - 1)])
    return "".join(out).rjust(width)


def clip(text: str, width: int) -> str:
    """Text cut to ``width`` characters (an ellipsis marks a cut)."""
    text = text.replace("\n", " ")
    if width <= 0:
        return ""
    return text if len(text) <= width else text[:width - 1] + "…"


def columns(headers: list[str], rows: list[list[str]], width: int, flex: int = -1,
            right: Sequence[int] = ()) -> tuple[str, list[str]]:
    """A header line and row lines, columns padded to their widest cell, after a
    two-character gutter; the ``flex`` column is cut so that lines fit ``width``.
    Columns in ``right`` are aligned right (numbers)."""
    n = len(headers)
    widths = [max([len(headers[i]), *(len(r[i]) for r in rows)]) for i in range(n)]
    flex = flex % n
    fixed = sum(w for i, w in enumerate(widths) if i != flex) + 2 * (n - 1) + GUTTER
    widths[flex] = max(min(widths[flex], width - fixed), 1)

    def line(cells: list[str]) -> str:
        out = []
        for i, (c, w) in enumerate(zip(cells, widths, strict=True)):
            c = clip(c, w)
            out.append(c.rjust(w) if i in right else c.ljust(w))
        return clip("  ".join(out).rstrip(), width - GUTTER)

    return " " * GUTTER + line(headers), [line(r) for r in rows]


def mark(lines: list[str], cursor: int | None) -> list[str]:
    """Rows with their gutter: "> " before the row under the cursor."""
    return [("> " if i == cursor else "  ") + ln for i, ln in enumerate(lines)]


def lane_table(frame: Frame, width: int) -> tuple[str, list[str]]:
    """The lanes: depth, oldest age, in flight, done/s, error rate, and sparklines of
    depth and done/s over the last minutes."""
    fixed = ["lane", "depth", "oldest", "in flight", "done/s", "errors"]
    rows = [[r.name, str(r.depth), age(r.oldest_s), str(r.in_flight), rate(r.done_per_s),
             percent(r.error_rate)] for r in frame.lanes]
    head, lines = columns(fixed, rows, width, right=(1, 2, 3, 4, 5))
    points = len(frame.lanes[0].depth_trend) if frame.lanes else 0
    base = max([len(head) - GUTTER, *(len(ln) for ln in lines)])
    spark = min((width - GUTTER - base - 2 - 3) // 2, points)  # "  " before, " | " between
    if spark >= 4:
        minutes = frame.trend_window_s / points * spark / 60
        head = f"{head.ljust(base + GUTTER)}  " + clip(f"depth | done/s, {minutes:.0f} min",
                                                      2 * spark + 3)
        lines = [f"{ln.ljust(base)}  {sparkline(r.depth_trend, spark)} | "
                 f"{sparkline(r.done_trend, spark)}"
                 for ln, r in zip(lines, frame.lanes, strict=True)]
    return head, lines


def _states(m: MachineRow, lane: str) -> str:
    states = m.states.get(lane, {})
    total = sum(states.values())
    if not total:
        text = "0"
    else:
        text = ", ".join(f"{n} {s}" for s, n in sorted(states.items(), key=lambda x: -x[1]))
    if total != m.target.get(lane, total):
        text += f" (target {m.target[lane]})"
    return text


def machine_table(frame: Frame, width: int) -> tuple[str, list[str]]:
    """Per machine: the foreman, its beat, its workers by lane and state, restarts."""
    rows = [[m.host, m.foreman, age(m.beat_age_s), _states(m, "async"), _states(m, "blocking"),
             str(m.restarts)] for m in frame.machines]
    return columns(["host", "foreman", "beat", "async workers", "blocking workers", "restarts"],
                   rows, width, flex=1, right=(2, 5))


def failure_table(frame: Frame, width: int) -> tuple[str, list[str]]:
    """The latest failed runs: when, what, which run, attempts, the error."""
    full = width >= 120  # unit ids are 32 characters: whole only where they fit
    rows = [[clock(f.finished_at), f.name, f.unit_id if full else f.unit_id[:12],
             str(f.attempts), f.error] for f in frame.failures]
    return columns(["failed", "name", "run", "tries", "error"], rows, width, flex=4,
                   right=(3,))


def decision_table(frame: Frame, width: int) -> tuple[str, list[str]]:
    """The optimizer's latest decisions: action, reason, urgencies, mix, applied."""
    many = len({d.foreman for d in frame.decisions}) > 1
    rows = []
    for d in frame.decisions:
        row = [clock(d.at), d.summary(), d.reason,
               f"{d.urgency['async']:.2f}/{d.urgency['blocking']:.2f}",
               f"{d.before['async']}+{d.before['blocking']}"
               + (f"→{d.after['async']}+{d.after['blocking']}" if d.changed else ""),
               {True: "yes", False: "no", None: "-"}[d.applied], d.detail]
        rows.append([*row[:1], d.foreman, *row[1:]] if many else row)
    headers = ["time", "action", "reason", "urgency a/b", "mix a+b", "applied", "detail"]
    if many:
        headers.insert(1, "foreman")
    return columns(headers, rows, width, flex=-1)


SECTIONS = ("lanes", "machines", "failures", "decisions")
TITLES = {"lanes": "LANES", "machines": "MACHINES", "failures": "FAILURES",
          "decisions": "DECISIONS"}


def section_title(frame: Frame, name: str) -> str:
    """A section's title line, with what it counts."""
    if name == "machines":
        return f"MACHINES  {len(frame.machines)} foreman" + \
            ("" if len(frame.machines) == 1 else "s")
    if name == "failures":
        what = f"  filter: {frame.filter!r}" if frame.filter else ""
        n = len(frame.failures)
        return f"FAILURES  {n} failed run{'' if n == 1 else 's'}, newest first{what}"
    if name == "decisions":
        return "DECISIONS  the optimizer's latest, newest first"
    return "LANES  now; error rate over the last minute"


def table_of(frame: Frame, name: str, width: int) -> tuple[str, list[str]]:
    """One section's header and rows."""
    return {"lanes": lane_table, "machines": machine_table, "failures": failure_table,
            "decisions": decision_table}[name](frame, width)


EMPTY = {"lanes": "no lanes", "machines": "no foremen on this namespace",
         "failures": "no failed runs", "decisions": "no decisions recorded yet"}


def frame_text(frame: Frame, width: int, where: str, limit: int | None = None) -> str:
    """The whole frame as text (``btop --once``): each section's title, header and
    rows (at most ``limit`` rows a section)."""
    out = [clip(f"blazing btop  {frame.at.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC  "
                f"{where}", width)]
    for name in SECTIONS:
        head, rows = table_of(frame, name, width)
        out += ["", clip(section_title(frame, name), width)]
        if not rows:
            out.append("  " + EMPTY[name])
            continue
        out.append(head)
        out += mark(rows[:limit], None)
    return "\n".join(ln.rstrip() for ln in out) + "\n"


def event_line(e: Breadcrumb, start: datetime) -> str:
    """One timeline event: time since the run's first event, kind, message, metadata."""
    rel = (e.at - start).total_seconds()
    meta = f"  {e.metadata}" if e.metadata not in (None, {}) else ""
    return f"+{rel:8.3f}s  {e.kind:<9} {e.message}{meta}"


def timeline_tree(ops: list[OperationRecord], events: list[Breadcrumb]) -> list[str]:
    """The timeline as a tree of operations (children under their caller), each
    operation's events under it, times relative to the run's first event."""
    start = events[0].at if events else datetime.now(timezone.utc)
    by_path: dict[str, list[Breadcrumb]] = {}
    for e in events:
        by_path.setdefault(e.path, []).append(e)
    kids: dict[str, list[OperationRecord]] = {}
    for o in ops:
        kids.setdefault(o.parent, []).append(o)
    lines: list[str] = []

    def walk(o: OperationRecord, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        lines.append(f"{prefix}{branch}{o.name} {o.path}  [{o.status}, {o.attempts} attempt"
                     f"{'' if o.attempts == 1 else 's'}]")
        inner = prefix + ("" if top else ("   " if last else "│  "))
        for e in by_path.get(o.path, []):
            lines.append(f"{inner}   {event_line(e, start)}")
        children = kids.get(o.path, [])
        for i, c in enumerate(children):
            walk(c, inner, i == len(children) - 1, False)

    for root in kids.get("", []):
        walk(root, "", True, True)
    return lines


def run_lines(unit_id: str, ops: list[OperationRecord], timeline: Any) -> list[str]:
    """A run drilled into: its timeline tree, then the failed operations' errors."""
    lines = [f"run {unit_id}"]
    if timeline.dropped:
        lines.append(f"({timeline.dropped} older breadcrumbs were dropped: "
                     "a run keeps its newest)")
    lines += timeline_tree(ops, timeline.events)
    for o in ops:
        if o.error_traceback or o.error_type:
            lines += ["", f"{o.name} {o.path} failed: {o.error_type}: {o.error_message}"]
            lines += (o.error_traceback or "").rstrip("\n").splitlines()
    return lines


def machine_lines(m: MachineRow) -> list[str]:
    """A machine drilled into: its foreman and every worker."""
    lines = [f"{m.host}  foreman {m.foreman} (pid {m.pid}), beat {age(m.beat_age_s)} ago, "
             f"target {m.target['async']} async + {m.target['blocking']} blocking, "
             f"{m.restarts} restarts", ""]
    rows = [[w["id"], w["lane"], str(w["pid"]), w["state"], str(w["running"]),
             str(w["succeeded"]), str(w["failed"]), w.get("current") or "-"] for w in m.workers]
    if not rows:
        return [*lines, "no workers"]
    head, body = columns(["worker", "lane", "pid", "state", "running", "succeeded", "failed",
                          "running now"], rows, 200)
    return [*lines, head, *mark(body, None)]


def decision_lines(d: Decision) -> list[str]:
    """A decision drilled into: every field the foreman recorded."""
    lines = [f"{d.at.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC  {d.summary()}  "
             f"({d.reason})", d.detail, ""]
    width = max((len(str(k)) for k in d.fields), default=0)
    lines += [f"{str(k).ljust(width)}  {v}" for k, v in sorted(d.fields.items())]
    return lines
