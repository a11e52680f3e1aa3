"""The foreman charts in the terminal (plotext): four panels — worker mix per machine,
queue depth, oldest age, the optimizer's urgencies with its mix changes as vertical
lines — and the latest changes with their reasons below, as text.

Time runs in seconds, minutes or hours before now. Lanes are told apart by marker as well as colour
(async "a", blocking "b"), so the charts read without colour.
"""

from __future__ import annotations

from datetime import datetime, timezone

from blazing.monitoring.chartdata import ChartData
from blazing.monitoring.deps import need
from blazing.monitoring.render import clip, clock

MARKER = {"async": "a", "blocking": "b"}
NOTES = 3  # the latest mix changes, in words, under the charts


def unit(seconds: float) -> tuple[str, float]:
    """The time unit for a window that long: seconds, minutes or hours (name, size)."""
    if seconds <= 180:
        return "seconds", 1.0
    if seconds <= 3 * 3600:
        return "minutes", 60.0
    return "hours", 3600.0


def _ago(times: list[datetime], now: datetime, size: float) -> list[float]:
    return [-(now - t).total_seconds() / size for t in times]


def render(data: ChartData, width: int, height: int, colour: bool, title: str = "") -> str:
    """The charts as text, ``width`` × ``height`` characters (notes included)."""
    plt = need("plotext", "blazing charts (in the terminal)")
    now = data.until
    notes = data.changes[-NOTES:]
    lines_below = 1 + max(len(notes), 1)
    plt.main()  # plotext keeps its last active subplot: start from the whole figure
    plt.clear_figure()
    plt.theme("clear" if not colour else "pro")
    plt.plotsize(width, max(height - lines_below, 12))
    plt.subplots(2, 2)
    x0 = min([t for ln in data.lanes for t in ln.times[:1]] + [now])
    span = (now - max(x0, data.since)).total_seconds()
    name, size = unit(span)
    left = -span / size

    def panel(row: int, col: int, name: str, ylabel: str) -> None:
        plt.subplot(row, col)
        plt.title(name)
        plt.ylabel(ylabel)
        plt.xlim(min(left, -0.1), 0)
        for d in data.changes:
            plt.vline(-(now - d.at).total_seconds() / size)

    panel(1, 1, "workers per machine", "workers")
    for m in data.machines:
        for lane in ("async", "blocking"):
            plt.plot(_ago(m.times, now, size), m.workers[lane], marker=MARKER[lane],
                     label=f"{m.label} {lane}"[:24])
    panel(1, 2, "queue depth", "queued")
    for ln in data.lanes:
        plt.plot(_ago(ln.times, now, size), ln.depth, marker=MARKER[ln.lane], label=ln.lane)
    panel(2, 1, "oldest queued age", "seconds")
    for ln in data.lanes:
        plt.plot(_ago(ln.times, now, size), ln.oldest_s, marker=MARKER[ln.lane], label=ln.lane)
    panel(2, 2, "urgency; │ mix change", "urgency")
    for lane in ("async", "blocking"):
        plt.plot(_ago([d.at for d in data.decisions], now, size),
                 [d.urgency[lane] for d in data.decisions], marker=MARKER[lane], label=lane)
    for row in (1, 2):
        for col in (1, 2):
            plt.subplot(row, col)
            plt.xlabel(f"{name} before now")
    text = plt.build()
    if not colour:  # the "clear" theme still ends lines with a reset code
        text = plt.uncolorize(text)
    head = f"{title}  {now.astimezone(timezone.utc):%H:%M:%S} UTC, " \
        f"{len(data.changes)} mix change(s) in the window"
    below = [clip(head, width)]
    below += [clip(f"  {clock(d.at)}  {d.summary()}  ({d.reason}; urgency async "
                   f"{d.urgency['async']:.2f}, blocking {d.urgency['blocking']:.2f})"
                   + ("  not applied" if d.applied is False else ""), width) for d in notes]
    if not notes:
        below.append("  no mix change in this window")
    return text.rstrip("\n") + "\n" + "\n".join(below) + "\n"
