"""The foreman charts as one self-contained HTML page, to share: the PNG inline
(base64), the mix changes and every decision with its reason and urgencies, and the
lanes' and machines' extremes. No script, no stylesheet or image from elsewhere."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from html import escape

from blazing.monitoring.chartdata import ChartData
from blazing.monitoring.charts_png import png
from blazing.monitoring.decision import Decision

MAX_ROWS = 500  # decisions listed, newest first

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #111; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #ccc; }
.muted { color: #555; }
"""


def _t(t: datetime) -> str:
    return escape(f"{t.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC")


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td class=\"n\">{c}</td>" if i in numeric else f"<td>{c}</td>"
                         for i, c in enumerate(r)) + "</tr>\n" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>"


def _decision_row(d: Decision) -> list[str]:
    mix = f"{d.before['async']}+{d.before['blocking']}"
    if d.changed:
        mix += f" → {d.after['async']}+{d.after['blocking']}"
    return [_t(d.at), escape(d.foreman), escape(d.summary()), escape(d.reason),
            f"{d.urgency['async']:.3g}", f"{d.urgency['blocking']:.3g}",
            str(d.depth["async"]), str(d.depth["blocking"]), escape(mix),
            {True: "yes", False: "no", None: "-"}[d.applied], escape(d.detail)]


DECISION_HEADERS = ["time", "foreman", "action", "reason", "urgency async",
                    "urgency blocking", "depth async", "depth blocking", "mix async+blocking",
                    "applied", "detail"]


def page(data: ChartData, title: str) -> str:
    """The page as a string."""
    image = base64.b64encode(png(data, title)).decode("ascii")
    lanes = [[escape(ln.lane), f"{max(ln.depth, default=0):.0f}",
              f"{max(ln.oldest_s, default=0):.1f}",
              f"{ln.depth[-1]:.0f}" if ln.depth else "-"] for ln in data.lanes]
    machines = [[escape(m.label), escape(m.foreman), str(len(m.times))]
                + [f"{min(m.workers[lane]):.0f}–{max(m.workers[lane]):.0f}"
                   for lane in ("async", "blocking")] for m in data.machines]
    changes = [_decision_row(d) for d in reversed(data.changes)]
    every = [_decision_row(d) for d in reversed(data.decisions)][:MAX_ROWS]
    numeric = {4, 5, 6, 7}
    parts = [
        "<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{escape(title)}</title>", f"<style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p class=\"muted\">From {_t(data.since)} to {_t(data.until)}"
        f"{' (minute averages)' if data.coarse else ' (a sample per foreman beat)'}: "
        f"{data.samples} samples from {len(data.machines)} machine(s), "
        f"{len(data.decisions)} decisions, {len(data.changes)} of them changing the mix.</p>",
        f"<img alt=\"{escape(title)}: worker mix per machine, queue depth and oldest age per "
        f"lane, the optimizer's urgencies and mix changes\" "
        f"src=\"data:image/png;base64,{image}\">",
        "<h2>Mix changes, newest first</h2>",
        _table(DECISION_HEADERS, changes, numeric) if changes
        else "<p>No decision changed the mix in this window.</p>",
        "<h2>Lanes</h2>",
        _table(["lane", "peak depth", "peak oldest age (s)", "depth at the end"], lanes,
               {1, 2, 3}),
        "<h2>Machines</h2>",
        _table(["machine", "foreman", "samples", "async workers", "blocking workers"],
               machines, {2}),
        f"<h2>Every decision, newest first ({len(every)} of {len(data.decisions)})</h2>",
        _table(DECISION_HEADERS, every, numeric) if every
        else "<p>No decision recorded in this window.</p>",
        "</body></html>", ""]
    return "\n".join(parts)
