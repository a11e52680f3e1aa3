"""Results files into markdown: every table the docs show, and the line saying where it
came from.

Each benchmark script prints its tables through these functions, and
``benchmarks/tables.py --write`` puts the same rendering into the docs, so what a run
prints is what the docs show. A renderer takes the parsed results file and returns
markdown ending in a newline; it raises ``ValueError`` when the file lacks what it needs
(its provenance first of all).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Sequence
from typing import Any

# A 1-minute load average at or above this, before a run started, means other work was
# running on the machine while it measured (the run's own load comes after).
BUSY_LOAD = 0.5


# --- numbers -----------------------------------------------------------------------------


def num(value: float, spec: str) -> str:
    """`value` formatted with a format spec (``,.0f``, ``.2f``, ...)."""
    return format(value, spec)


def span(values: Sequence[float], spec: str, scale: float = 1.0) -> str:
    """``min–max`` of the values (one value alone when all are equal)."""
    lo, hi = min(values) / scale, max(values) / scale
    a, b = num(lo, spec), num(hi, spec)
    return a if a == b else f"{a}–{b}"


def with_span(median: float, values: Sequence[float], spec: str, unit: str = "",
              scale: float = 1.0) -> str:
    """``median unit (min–max)``; the span is left out for a single repeat."""
    text = f"{num(median / scale, spec)}{unit}"
    spread = span(values, spec, scale)
    if "–" in spread:  # more than one repeat, and they differ at this precision
        text += f" ({spread})"
    return text


def compact(value: float) -> str:
    """10,685,088 -> ``10.7 M``; 176,918 -> ``177 k``; smaller values as they are."""
    for limit, suffix in ((1e6, " M"), (1e3, " k")):
        if value >= limit:
            scaled = value / limit
            return (f"{scaled:.1f}" if scaled < 100 else f"{scaled:.0f}") + suffix
    return f"{value:,.0f}"


def compact_span(values: Sequence[float]) -> str:
    """``min–max`` in compact form, the unit once: ``1.7–5.6 M``, ``28.0 k–1.2 M``."""
    a, b = compact(min(values)), compact(max(values))
    for suffix in (" k", " M"):
        if a.endswith(suffix) and b.endswith(suffix) and a != b:
            a = a[:-len(suffix)]
    return a if a == b else f"{a}–{b}"


def met(ok: bool) -> str:
    """How a target column says whether the median meets it."""
    return "met" if ok else "**not met**"


def ratio(value: float) -> str:
    """A ratio with three significant figures (``7.35×``, ``16.8×``)."""
    return f"{value:.1f}×" if value >= 10 else f"{value:.2f}×"


def table(header: Sequence[str], rows: Sequence[Sequence[str]],
          align: Sequence[str] | None = None) -> list[str]:
    """A markdown table's lines; `align` holds ``---`` or ``---:`` per column."""
    align = align or ["---"] * len(header)
    return ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|",
            *("| " + " | ".join(r) + " |" for r in rows)]


# --- provenance --------------------------------------------------------------------------


def require(res: dict[str, Any], *keys: str) -> None:
    """ValueError naming the first of `keys` the results file lacks."""
    for key in keys:
        if key not in res:
            raise ValueError(f"the results file has no {key!r}")


def provenance_line(res: dict[str, Any], how: str, measured: bool = True) -> str:
    """One line: the command, the commit, the machine, the date, the machine's load, and
    `how` (what the figures are: medians of how many repeats, what the spread is). For a
    deterministic simulation (`measured` false) the machine and its load are left out."""
    p = res.get("provenance")
    if not isinstance(p, dict):
        raise ValueError("the results file has no provenance (see benchmarks/provenance.py)")
    missing = [k for k in ("commit", "command", "machine", "when") if not p.get(k)]
    if missing:
        raise ValueError(f"the results file's provenance lacks {', '.join(missing)}")
    commit = f"`{p['commit']}`" + (" with uncommitted changes" if p.get("dirty") else "")
    if measured:
        line = f"Measured by `{p['command']}` at commit {commit}, {p['when']}, on {p['machine']}"
        line += load_text(p) + ". " + how
    else:
        line = f"Stored by `{p['command']}` at commit {commit}, {p['when']}. " + how
    if p.get("reconstructed"):
        line += f" This provenance was reconstructed {p['reconstructed']}."
    if res.get("smoke"):
        line = "Smoke run (tiny sizes, one repeat: it shows that the benchmark runs, not how "\
               "fast). " + line
    return line + "\n"


def load_text(p: dict[str, Any]) -> str:
    """The machine's load around the run, from the provenance (empty if not recorded)."""
    before, after = p.get("load_before") or [], p.get("load") or []
    if not before and not after:
        return ""
    parts = []
    if before:
        parts.append(f"{before[0]:.2f} before the run")
    if after:
        parts.append(f"{after[0]:.2f} at its end")
    text = "; 1-minute load average " + ", ".join(parts)
    if before and before[0] >= BUSY_LOAD:
        text += " (other work was running on the machine)"
    return text


def repeats_text(n: int, spread: str = "the range of the repeats in parentheses") -> str:
    """``Medians of 5 repeats, ...`` or ``One run.`` for a single repeat."""
    if n <= 1:
        return "One run (no repeats: no spread)."
    return f"Medians of {n} repeats, {spread}."


# --- embedded ----------------------------------------------------------------------------


def compact_cell(median: float, values: Sequence[float]) -> str:
    """A rate in compact form with its span: ``2.1 M/s (1.7–5.6 M)``."""
    spread = compact_span(values)
    return f"{compact(median)}/s" + (f" ({spread})" if "–" in spread else "")


def embedded(res: dict[str, Any]) -> str:
    """benchmarks/embedded.py: step calls, workflows and round trips in one process."""
    require(res, "samples", "median", "n_steps", "n_workflows", "n_latency", "repeats")
    s, m = res["samples"], res["median"]
    tasks = m["tasks"]

    def cell(key: str, spec: str = ",.0f", unit: str = "") -> str:
        return with_span(m[key], s[key], spec, unit)

    rows = [
        [f"no-op step calls/s, sequential in a workflow ({res['n_steps']:,} calls)",
         cell("seq"), "≥ 20,000: " + met(m["seq"] >= 20_000),
         f"{m['seq'] / tasks:.2f}× an asyncio Task per call"],
        [f"no-op step calls/s, gathered in a workflow ({res['n_steps']:,} calls)",
         cell("gather"), "≥ 20,000: " + met(m["gather"] >= 20_000),
         f"{m['gather'] / tasks:.2f}× an asyncio Task per call"],
        [f"3-step workflows/s ({res['n_workflows']:,} in flight)", cell("three"),
         "≥ 4,000: " + met(m["three"] >= 4_000), ""],
        [f"submit-to-result p50 ({res['n_latency']:,} sequential round trips)",
         cell("p50", ",.0f", " µs"), "< 250 µs: " + met(m["p50"] < 250), ""],
        ["submit-to-result p99", cell("p99", ",.0f", " µs"), "", ""],
        ["one boundary crossing (empty batch into Go and back)", cell("cross", ".2f", " µs"),
         "", f"{m['cross'] / m['ctypes']:.1f}× a bare ctypes call ({m['ctypes']:.2f} µs)"],
        ["baseline: direct await of the coroutine", compact_cell(m["direct"], s["direct"]),
         "", ""],
        ["baseline: an asyncio Task per call", compact_cell(tasks, s["tasks"]), "", ""],
    ]
    lines = table(["figure", "median", "target", "against a baseline (medians)"], rows)
    how = repeats_text(res["repeats"]) + (
        " Baselines measured in the same invocation.")
    return "\n".join(lines) + "\n\n" + provenance_line(res, how)


# --- Redis mode --------------------------------------------------------------------------


def redis(res: dict[str, Any]) -> str:
    """benchmarks/redis_throughput.py, history on: rates, latency, memory, RSS."""
    require(res, "samples", "median", "n", "repeats", "ping_us")
    s, m, n = res["samples"], res["median"], res["n"]

    def cell(key: str, spec: str, unit: str = "", scale: float = 1.0) -> str:
        return with_span(m[key], s[key], spec, unit, scale)

    rows = [
        [f"drain rate, {n['drain']:,} queued no-op steps, 2 worker processes",
         cell("drain_per_s", ",.0f", "/s"), "≥ 15,000/s: " + met(m["drain_per_s"] >= 15_000)],
        [f"3-step workflows, {n['workflows']:,} in flight", cell("wf_per_s", ",.0f", "/s"),
         "≥ 3,000/s: " + met(m["wf_per_s"] >= 3_000)],
        [f"submit-to-result p50, {n['latency']:,} sequential round trips",
         cell("p50_us", ".2f", " ms", 1000), "< 0.4 ms: " + met(m["p50_us"] < 400)],
        ["submit-to-result p99", cell("p99_us", ".2f", " ms", 1000),
         "< 1.5 ms: " + met(m["p99_us"] < 1500)],
        [f"Redis memory per finished 3-step run ({n.get('memory', 1000):,} runs)",
         cell("bytes_per_run", ",.0f", " B"), "≤ 2 KiB: " + met(m["bytes_per_run"] <= 2048)],
        ["worker process RSS, after the runs", cell("worker_rss_mb", ".0f", " MB"),
         "≤ 80 MB: " + met(m["worker_rss_mb"] <= 80)],
        ["baseline: Redis `PING` round trip from Python (once per invocation)",
         f"{res['ping_us']:.0f} µs", ""],
    ]
    lines = table(["figure", "median", "target"], rows)
    how = repeats_text(res["repeats"]) + " History on (the default)."
    return "\n".join(lines) + "\n\n" + provenance_line(res, how)


# label, key, unit, format, divisor
REDIS_HISTORY_FIGURES = [
    ("drain rate", "drain_per_s", "/s", ",.0f", 1),
    ("3-step workflows", "wf_per_s", "/s", ",.0f", 1),
    ("Redis CPU per drained step (submit, reserve, complete)", "redis_cpu_us_per_step", " µs",
     ".1f", 1),
    ("Redis CPU per 3-step workflow", "redis_cpu_us_per_workflow", " µs", ".1f", 1),
    ("submit-to-result p50", "p50_us", " ms", ".2f", 1000),
    ("Redis memory per finished 3-step run", "bytes_per_run", " B", ",.0f", 1),
]


def redis_history(res: dict[str, Any]) -> str:
    """benchmarks/redis_throughput.py: the same figures with history on and off."""
    require(res, "samples", "median", "history_off", "repeats")
    on_s, on_m = res["samples"], res["median"]
    off_s, off_m = res["history_off"]["samples"], res["history_off"]["median"]
    rows = []
    for label, key, unit, spec, scale in REDIS_HISTORY_FIGURES:
        if key not in on_m or key not in off_m:
            continue  # an older file without this figure
        pairs = [a / b for a, b in zip(on_s[key], off_s[key], strict=True) if b]
        rows.append([label, f"{num(on_m[key] / scale, spec)}{unit}",
                     f"{num(off_m[key] / scale, spec)}{unit}",
                     f"{on_m[key] / off_m[key]:.3f}",
                     span(pairs, ".2f") if len(pairs) > 1 else "–"])
    lines = table(["figure", "history on", "history off", "on / off (medians)",
                   "on / off per repeat (min–max)"], rows)
    how = repeats_text(res["repeats"], "history on and off alternated in each repeat "
                                       "(on-off, then off-on), so the machine's drift hits "
                                       "both alike")
    return "\n".join(lines) + "\n\n" + provenance_line(res, how)


def history_cost(res: dict[str, Any]) -> str:
    """benchmarks/history_cost.py: the Go benchmark of the hot path, history on and off."""
    require(res, "steps_per_s", "redis_us_per_step", "repeats", "batches", "batch")
    rows = []
    for label, key, spec in (("steps/s", "steps_per_s", ",.0f"),
                             ("Redis µs per step", "redis_us_per_step", ".1f")):
        d = res[key]
        r = d["ratio_per_repeat"]
        rows.append([label, with_span(d["median_on"], d["on"], spec),
                     with_span(d["median_off"], d["off"], spec), f"{d['ratio']:.3f}",
                     f"{min(r):.2f}–{statistics.median(r):.2f}–{max(r):.2f}"])
    lines = table(["figure", "history on", "history off", "on / off (medians)",
                   "on / off per repeat (min–median–max)"], rows)
    how = repeats_text(res["repeats"], "ranges in parentheses") + (
        f" Each repeat runs `BenchmarkSubmitReserveComplete` once per setting, "
        f"{res['batches']:,} batches of {res['batch']} steps, alternating on-off and off-on.")
    return "\n".join(lines) + "\n\n" + provenance_line(res, how)


def history_instructions(res: dict[str, Any]) -> str:
    """benchmarks/history_instructions.py: Redis's instructions per step under callgrind,
    history on and off."""
    require(res, "instructions_per_step", "median", "repeats", "batches", "batch")
    d, m = res["instructions_per_step"], res["median"]
    r = [a / b for a, b in zip(d["on"], d["off"], strict=True)]
    rows = [["Redis instructions per step", with_span(m["on"], d["on"], ",.0f"),
             with_span(m["off"], d["off"], ",.0f"), f"{m['ratio']:.3f}",
             f"{min(r):.3f}–{statistics.median(r):.3f}–{max(r):.3f}"]]
    lines = table(["figure", "history on", "history off", "on / off (medians)",
                   "on / off per repeat (min–median–max)"], rows)
    small, large = res["batches"]
    added = (large - small) * res["batch"]
    how = repeats_text(res["repeats"], "ranges in parentheses") + (
        " Counted, not timed: `redis-server` runs under valgrind's callgrind while "
        f"`BenchmarkSubmitReserveComplete` runs {small:,} and then {large:,} batches of "
        f"{res['batch']} steps per setting; the difference over the {added:,} steps it adds "
        "is one step's cost, with set-up cancelled out. History on and off alternated "
        "(on-off, then off-on).")
    return "\n".join(lines) + "\n\n" + provenance_line(res, how)


# --- connectors --------------------------------------------------------------------------


def connectors(res: dict[str, Any]) -> str:
    """benchmarks/connectors.py: a pooled connection per step against a new one."""
    require(res, "args", "rows")
    rows = []
    for r in res["rows"]:
        rows.append([r["figure"], with_span(r["pooled"], r["pooled_runs"], ",.0f"),
                     with_span(r["new"], r["new_runs"], ",.0f"), f"{r['ratio']:.1f}×"])
    lines = table(["per step", "through the connector (steps/s)",
                   "new connection per step (steps/s)", "ratio (medians)"], rows,
                  ["---", "---:", "---:", "---:"])
    a = res["args"]
    how = repeats_text(a["repeats"], "the range of the rounds in parentheses").replace(
        "repeats", "rounds") + f" {a['steps']:,} steps per round, {a['concurrency']} at a time."
    versions = res.get("versions")
    if versions:
        how += " " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "."
    return "\n".join(lines) + "\n\n" + provenance_line(res, how)


# --- foreman idle ------------------------------------------------------------------------


def foreman_idle(res: dict[str, Any]) -> str:
    """benchmarks/foreman_idle.py: the foreman's and its idle workers' own cost."""
    require(res, "windows", "seconds")
    w = res["windows"]
    f_rss = [x["foreman_rss_mb"] for x in w]
    f_cpu = [x["foreman_cpu_pct"] for x in w]
    k_rss = [v for x in w for v in x["worker_rss_mb"]]
    k_cpu = [v for x in w for v in x["worker_cpu_pct"]]
    rows = [
        ["foreman", with_span(statistics.median(f_rss), f_rss, ".1f", " MB"),
         with_span(statistics.median(f_cpu), f_cpu, ".2f", "%"),
         "< 30 MB, < 1%: " + met(statistics.median(f_rss) < 30
                                 and statistics.median(f_cpu) < 1)],
        [f"idle worker ({len(w[0]['worker_rss_mb'])} processes)",
         with_span(statistics.median(k_rss), k_rss, ".1f", " MB"),
         with_span(statistics.median(k_cpu), k_cpu, ".2f", "%"),
         "< 80 MB: " + met(statistics.median(k_rss) < 80)],
    ]
    lines = table(["process", "resident", "CPU, % of one core", "target"], rows)
    how = (f"Medians of {len(w)} consecutive windows of {res['seconds']:g} s each "
           "(every worker in every window for the workers), ranges in parentheses; "
           "the foreman samples the lanes into the time series every 2 s beat.")
    if len(w) <= 1:
        how = f"One window of {res['seconds']:g} s (no spread)."
    return "\n".join(lines) + "\n\n" + provenance_line(res, how)


# --- the optimizer's simulation ----------------------------------------------------------


def optsim_run(res: dict[str, Any], interval: str, seed: int = 1) -> dict[str, Any]:
    """The stored run of `go run ./cmd/optsim` at one interval and seed."""
    require(res, "runs")
    for run in res["runs"]:
        if run["interval"] == interval and run["seed"] == seed:
            return run
    raise ValueError(f"the results file has no optsim run at interval {interval}, seed {seed}")


def optimizer_table(interval: str) -> Callable[[dict[str, Any]], str]:
    """A renderer of cmd/optsim's own markdown, seed 1, at one interval."""

    def render(res: dict[str, Any]) -> str:
        run = optsim_run(res, interval)
        how = (f"The simulation is deterministic: `{run['command']}` prints this on any "
               "machine, and tests/test_tables.py re-runs it and compares.")
        return run["markdown"].rstrip("\n") + "\n\n" + provenance_line(res, how, False)

    render.__doc__ = f"cmd/optsim -markdown at {interval}, seed 1, as printed."
    return render


DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:([\d.]+)(ms|s))?$")


def go_duration(text: str) -> float:
    """Seconds in a Go duration as cmd/optsim prints it (``1m37.55s``, ``550ms``)."""
    m = DURATION.match(text.strip())
    if not m or not any(m.groups()):
        raise ValueError(f"not a Go duration: {text!r}")
    h, mins, value, unit = m.groups()
    secs = int(h or 0) * 3600 + int(mins or 0) * 60
    if value:
        secs += float(value) / (1000 if unit == "ms" else 1)
    return secs


def short_duration(seconds: float) -> str:
    """A wait as the docs write it: ``50 ms``, ``13.8 s``, ``7.6 min``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.3g} s"
    return f"{seconds / 60:.1f} min"


def optsim_rows(markdown: str) -> list[dict[str, Any]]:
    """The rows of cmd/optsim's markdown table, parsed."""
    rows = []
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 11 or cells[0] in ("workload", "---"):
            continue
        rows.append({"workload": cells[0],
                     "vs_best": float(cells[5].rstrip("%")),
                     "p99": go_duration(cells[9]), "best_p99": go_duration(cells[10])})
    if not rows:
        raise ValueError("no table rows in the stored cmd/optsim output")
    return rows


def optimizer_seeds(res: dict[str, Any]) -> str:
    """Over every stored seed, per interval and workload: the optimizer's makespan against
    the best static mix's, and both p99 waits."""
    require(res, "runs")
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    seeds: dict[str, set[int]] = {}
    for run in res["runs"]:
        seeds.setdefault(run["interval"], set()).add(run["seed"])
        for row in optsim_rows(run["markdown"]):
            by.setdefault((run["interval"], row["workload"]), []).append(row)
    rows = []
    for (interval, workload), rs in by.items():
        vs = [r["vs_best"] for r in rs]
        p99 = [r["p99"] for r in rs]
        best = [r["best_p99"] for r in rs]
        ratios = [a / b for a, b in zip(p99, best, strict=True)]
        rows.append([interval, workload, lo_hi(vs, lambda v: f"{v:+.1f}%"),
                     lo_hi(p99, short_duration), lo_hi(best, short_duration),
                     lo_hi(ratios, lambda v: f"{v:.2f}" if v < 10 else f"{v:.1f}")])
    lines = table(["interval", "workload", "makespan vs best static (+: longer)",
                   "optimizer p99 wait",
                   "best static p99 wait", "p99 wait ÷ best static's"], rows)
    ranges = "; ".join(f"{i}: seeds {min(s)}-{max(s)}" for i, s in seeds.items())
    how = (f"Lowest to highest over the seeds ({ranges}), from the stored output of "
           "`go run ./cmd/optsim -markdown -seed N [-interval 30s]`; the simulation is "
           "deterministic, and tests/test_tables.py re-runs it and compares.")
    return "\n".join(lines) + "\n\n" + provenance_line(res, how, False)


def lo_hi(values: Sequence[float], fmt: Callable[[float], str]) -> str:
    """``lowest to highest`` of the values, formatted (one value when they agree)."""
    a, b = fmt(min(values)), fmt(max(values))
    return a if a == b else f"{a} to {b}"


# --- peers -------------------------------------------------------------------------------

# The figures each workload reports, in table order, with how Blazing's ratio is taken:
# "higher" = ours/theirs (rates), "lower" = theirs/ours (latency), None = no ratio (counts).
PEER_FIGURES: list[tuple[str, str, str, str | None]] = [
    ("enqueue", "per_s", "enqueue/s", "higher"),
    ("drain", "per_s", "drain/s", "higher"),
    ("pipelines", "per_s", "pipelines/s", "higher"),
    ("latency", "p50_ms", "p50 ms", "lower"),
    ("latency", "p99_ms", "p99 ms", "lower"),
    ("loss", "lost", "lost", None),
    ("loss", "duplicated", "duplicated", None),
]


def peer_cell_key(workload: str, key: str) -> str:
    """Key of a figure in a peers report's medians (enqueue and drain both report per_s)."""
    return {"drain": "drain_per_s", "pipelines": "pipelines_per_s"}.get(workload, key)


def peer_value(value: float | None, key: str) -> str:
    """One peers figure as the table shows it."""
    if value is None:
        return "—"
    if key in ("lost", "duplicated"):
        return f"{value:g}"
    if key.endswith("_ms"):
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    return f"{value:,.0f}"


def peer_span(values: list[float], key: str) -> str:
    """The spread of a peers figure's runs, compactly (rates in k)."""
    if key.endswith("_ms") or key in ("lost", "duplicated"):
        a, b = peer_value(min(values), key), peer_value(max(values), key)
    else:
        return compact_span(values)
    return a if a == b else f"{a}–{b}"


def peer_runs(report: dict[str, Any], row: str, workload: str, key: str) -> list[float]:
    """The figure `key` of every successful run of one row and workload."""
    return [r[key] for r in report.get("runs", [])
            if r["row"] == row and r["workload"] == workload and "error" not in r and key in r]


def peers(report: dict[str, Any]) -> str:
    """benchmarks/peers/run.py: every system's medians, Blazing's ratios, issue 5's targets."""
    require(report, "rows", "medians", "workloads", "sizes", "repeats", "machine", "versions")
    rows: list[str] = report["rows"]
    medians: dict[str, dict[str, Any]] = report["medians"]
    figures = [f for f in PEER_FIGURES if f[0] in report["workloads"]]
    lines = ["| system | " + " | ".join(label for _, _, label, _ in figures) + " |",
             "|---|" + "---:|" * len(figures)]
    notes: list[str] = []
    for name in rows:
        cells = []
        for workload, key, _label, _ in figures:
            c = medians[name].get(peer_cell_key(workload, key))
            if c is None or c["runs"] == 0:
                cells.append("")
                continue
            if c["median"] is None:
                notes.append(f"{name} {workload}: " + "; ".join(c["errors"]))
                cells.append(f"error[^{len(notes)}]")
                continue
            text = peer_value(c["median"], key)
            runs = peer_runs(report, name, workload, key)
            spread = peer_span(runs, key) if runs else ""
            if "–" in spread:
                text += f" ({spread})"
            if c["ok"] < c["runs"] or c["warn"]:
                why = []
                if c["ok"] < c["runs"]:
                    why.append(f"{c['runs'] - c['ok']} of {c['runs']} runs failed: "
                               + "; ".join(c["errors"]))
                if c["warn"]:
                    why.append(", ".join(f"{k} {v} in total" for k, v in c["warn"].items()))
                notes.append(f"{name} {workload}: " + "; ".join(why))
                text += f"[^{len(notes)}]"
            cells.append(text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ratio_figures = [f for f in figures if f[3]]
    if "blazing" in rows and ratio_figures and len(rows) > 1:
        lines += ["", "Blazing Flow's ratio to each peer, from the medians (above 1 = Blazing "
                  "better: rates as ours/theirs, latency as theirs/ours):", ""]
        lines.append("| Blazing × | " + " | ".join(lbl for _, _, lbl, _ in ratio_figures) + " |")
        lines.append("|---|" + "---:|" * len(ratio_figures))
        for name in rows:
            if name == "blazing":
                continue
            cells = []
            for workload, key, _label, better in ratio_figures:
                ours = (medians["blazing"].get(peer_cell_key(workload, key)) or {}).get("median")
                theirs = (medians[name].get(peer_cell_key(workload, key)) or {}).get("median")
                if not ours or not theirs:
                    cells.append("—")
                else:
                    cells.append(ratio(ours / theirs if better == "higher" else theirs / ours))
            lines.append(f"| vs {name} | " + " | ".join(cells) + " |")
    targets = peer_targets(report)
    if targets:
        lines += ["", targets]
    m = report["machine"]
    lines += ["", "N = " + ", ".join(f"{w} {n:,}" for w, n in report["sizes"].items()
                                      if w in report["workloads"])
              + f"{' (--quick: small N)' if report.get('quick') else ''}. "
              f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, "
              f"Linux {m['kernel']}, Python {m['python']}, redis-server {m['redis_server']}."]
    vers = [f"{system} (" + ", ".join(f"{p} {v or '?'}" for p, v in pkgs.items()) + ")"
            for system, pkgs in report["versions"].items()]
    if vers:
        lines.append("Versions: " + "; ".join(vers) + ".")
    for note in report.get("skipped", []):
        lines.append(f"Skipped: {note}.")
    if notes:
        lines.append("")
        lines += [f"[^{i}]: {text}" for i, text in enumerate(notes, 1)]
    how = repeats_text(report["repeats"], "the range of the runs in parentheses (rates in k)")
    return "\n".join(lines) + "\n\n" + provenance_line(report, how)


def peer_targets(report: dict[str, Any]) -> str:
    """Issue 5's targets against the table, worked out from it: drain and pipelines at
    least 3× the best peer, p50 and p99 below every peer, nothing lost under SIGKILL."""
    med = report["medians"]
    if "blazing" not in med or len(report["rows"]) < 2:
        return ""
    others = [r for r in report["rows"] if r != "blazing"]

    def median(row: str, key: str) -> float | None:
        return (med[row].get(key) or {}).get("median")

    parts = []
    for key, label in (("drain_per_s", "drain"), ("pipelines_per_s", "pipelines")):
        ours = median("blazing", key)
        theirs = [(median(r, key), r) for r in others if median(r, key)]
        if ours and theirs:
            best, who = max(theirs)
            parts.append(f"{label} {ratio(ours / best)} the best peer's ({who}): "
                         + met(ours >= 3 * best))
    for key, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
        ours = median("blazing", key)
        theirs = [(median(r, key), r) for r in others if median(r, key)]
        if ours and theirs:
            best, who = min(theirs)
            parts.append(f"{label} {ours:.2f} ms against the best peer's {best:.2f} ms ({who}): "
                         + met(ours < best))
    loss = [r for r in report.get("runs", [])
            if r["row"] == "blazing" and r["workload"] == "loss" and "error" not in r]
    if loss:
        lost = [r["lost"] for r in loss]
        kills = [r["kills"] for r in loss]
        dup = sum(r["duplicated"] for r in loss)
        kill_text = str(min(kills)) if min(kills) == max(kills) else \
            f"{min(kills)}–{max(kills)}"
        parts.append(f"lost under SIGKILL {', '.join(map(str, lost))} in {len(loss)} runs "
                     f"({kill_text} kills each; {dup} task{'s' if dup != 1 else ''} run twice "
                     "in all): " + met(not any(lost)))
    if not parts:
        return ""
    return ("Issue 5's targets (drain and pipelines ≥ 3× the best peer, p50 and p99 below "
            "every peer, nothing lost): " + "; ".join(parts) + ".")
