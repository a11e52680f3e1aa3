"""The foreman charts as a PNG (matplotlib): worker mix per machine, queue depth and
oldest age per lane, the optimizer's urgencies with its mix changes marked and
annotated with their reasons.

Lanes are told apart by hatching (mix) and line style (async solid, blocking dashed)
as well as colour, so the picture reads in grey too.
"""

from __future__ import annotations

import io
from datetime import timezone
from typing import Any

from blazing.monitoring.chartdata import ChartData, MixSeries
from blazing.monitoring.deps import need

STYLE = {"async": "-", "blocking": "--"}
COLOUR = {"async": "tab:blue", "blocking": "tab:orange"}
MAX_NOTES = 16  # mix changes annotated with their reasons; later ones are only marked
MAX_MACHINES = 3  # a mix panel each; more machines are summed into one panel


def _summed(machines: list[MixSeries]) -> MixSeries:
    """All machines' workers added up, on the times of the first machine's samples
    (each machine's last sample at or before each time)."""
    base = machines[0].times
    total = {lane: [0.0] * len(base) for lane in ("async", "blocking")}
    for m in machines:
        j = -1
        for i, t in enumerate(base):
            while j + 1 < len(m.times) and m.times[j + 1] <= t:
                j += 1
            if j >= 0:
                for lane in total:
                    total[lane][i] += m.workers[lane][j]
    return MixSeries(label=f"all {len(machines)} machines", foreman="", times=base,
                     workers=total)


def figure(data: ChartData, title: str = "") -> Any:
    """A matplotlib Figure of the data (no pyplot: no global state, no display)."""
    need("matplotlib", "blazing charts --png/--html")
    from matplotlib import dates
    from matplotlib.figure import Figure

    # One stacked mix panel per machine (up to MAX_MACHINES; more are summed into one).
    machines = data.machines
    if len(machines) > MAX_MACHINES:
        machines = [_summed(machines)]
    rows = max(len(machines), 1)
    fig = Figure(figsize=(12, 8 + 2 * rows), dpi=100, layout="constrained")
    axes = fig.subplots(rows + 3, 1, sharex=True,
                        gridspec_kw={"height_ratios": [1] * rows + [1, 1, 1.4]})
    mixes, (depth, oldest, urgency) = list(axes[:rows]), axes[rows:]
    span = f"{data.since.astimezone(timezone.utc):%Y-%m-%d %H:%M}–" \
        f"{data.until.astimezone(timezone.utc):%H:%M} UTC"
    fig.suptitle(f"{title}  {span}" + ("  (minute averages)" if data.coarse else ""),
                 fontsize=12)
    for ax, m in zip(mixes, machines, strict=False):
        a, b = m.workers["async"], m.workers["blocking"]
        ax.fill_between(m.times, 0, a, step="post", hatch="//", alpha=0.6,
                        facecolor=COLOUR["async"], edgecolor="0.2", label="async")
        ax.fill_between(m.times, a, [x + y for x, y in zip(a, b, strict=True)], step="post",
                        hatch="..", alpha=0.6, facecolor=COLOUR["blocking"],
                        edgecolor="0.2", label="blocking")
        ax.set_ylim(0, max([x + y for x, y in zip(a, b, strict=True)] + [1]) + 0.5)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel("workers")
        ax.set_title(f"Worker mix on {m.label} (async below, hatched //; blocking above, "
                     "dotted)", loc="left", fontsize=10)
    mix = mixes[0]
    if not data.machines:
        mix.text(0.5, 0.5, "no samples", ha="center", transform=mix.transAxes)
    for ln in data.lanes:
        depth.plot(ln.times, ln.depth, STYLE[ln.lane], color=COLOUR[ln.lane],
                   label=ln.lane)
        oldest.plot(ln.times, ln.oldest_s, STYLE[ln.lane], color=COLOUR[ln.lane],
                    label=ln.lane)
    depth.set_ylabel("queued")
    depth.set_title("Queue depth per lane", loc="left", fontsize=10)
    oldest.set_ylabel("seconds")
    oldest.set_title("Oldest queued operation's age per lane", loc="left", fontsize=10)
    for lane in ("async", "blocking"):
        urgency.plot([d.at for d in data.decisions], [d.urgency[lane] for d in data.decisions],
                     STYLE[lane], marker=".", markersize=3, color=COLOUR[lane],
                     label=f"{lane} urgency")
    urgency.set_ylabel("urgency")
    urgency.set_title("The optimizer: urgency per lane at each decision; mix changes marked "
                      "with their reason", loc="left", fontsize=10)
    for n, d in enumerate(data.changes):
        for ax in (*mixes, depth, oldest, urgency):
            ax.axvline(d.at, color="0.35", linestyle=":" if d.applied is False else "-.",
                       linewidth=1)
        if n < MAX_NOTES:
            note = (f"{d.summary()}\n{d.reason}\nurgency a {d.urgency['async']:.2f} "
                    f"b {d.urgency['blocking']:.2f}"
                    + ("\n(not applied)" if d.applied is False else ""))
            urgency.annotate(note, xy=(d.at, 0.97 - 0.3 * (n % 3)),
                             xycoords=("data", "axes fraction"), va="top", ha="left",
                             fontsize=7, xytext=(3, 0), textcoords="offset points",
                             bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.6",
                                   "alpha": 0.9})
    if data.decisions:
        urgency.set_ylim(0, max(max(d.urgency.values()) for d in data.decisions) * 1.1 + 0.1)
    else:
        urgency.text(0.5, 0.5, "no decisions recorded in this window", ha="center",
                     transform=urgency.transAxes)
    for ax in (*mixes, depth, oldest, urgency):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # outside, on the right: never over a note
            ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1), fontsize=8)
    # From the first sample (a foreman started within the window), not the window's start.
    firsts = [ln.times[0] for ln in data.lanes if ln.times] + [d.at for d in data.decisions[:1]]
    urgency.set_xlim(max([data.since, *([min(firsts)] if firsts else [])]), data.until)
    urgency.xaxis.set_major_formatter(dates.DateFormatter("%H:%M:%S", tz=timezone.utc))
    urgency.set_xlabel("time (UTC)")
    return fig


def png(data: ChartData, title: str = "") -> bytes:
    """The charts as PNG bytes."""
    buf = io.BytesIO()
    figure(data, title).savefig(buf, format="png")
    return buf.getvalue()
