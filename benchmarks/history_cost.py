"""What history costs on the hot path, measured without Python in the way.

Runs the Go benchmark ``BenchmarkSubmitReserveComplete`` (core/store/redisstore: batches
of 100 root steps through submit, reserve, complete and the caller's pop against a
fresh ``redis-server``) with history on (each run written to the index of runs) and off,
alternating on-off / off-on per repeat so the machine's drift hits both alike. Prints
medians, the ratio and the spread of per-repeat ratios; writes the samples with their
provenance to ``benchmarks/results/history-cost.json``.

    python benchmarks/history_cost.py [--repeats 10] [--batches 300] [--smoke] [--json PATH]

The table printed is the one the docs show (benchmarks/render.py). --smoke: one repeat
of 20 batches, results to a temp file.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import render, results_file  # noqa: E402

BENCH = "BenchmarkSubmitReserveComplete"
LINE = re.compile(r"^" + BENCH + r"/history=(on|off)\S*\s+\d+\s+[\d.]+ ns/op"
                  r"\s+([\d.]+) redis-µs/step\s+([\d.]+) steps/s", re.M)


def one(setting: str, batches: int) -> tuple[float, float]:
    """Steps/s and Redis's own µs per step of one go-test invocation (its own
    redis-server) at one setting."""
    out = subprocess.run(
        ["go", "test", "-run", "^$", "-bench", f"^{BENCH}$/^history={setting}$",
         "-benchtime", f"{batches}x", "-count", "1", "./core/store/redisstore"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    found = LINE.findall(out.stdout)
    if out.returncode != 0 or len(found) != 1 or found[0][0] != setting:
        raise SystemExit(f"go test failed or printed no figure:\n{out.stdout}\n{out.stderr}")
    return float(found[0][2]), float(found[0][1])


def main() -> None:
    """Alternate history on and off, write the results file, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--batches", type=int, default=300, help="batches of 100 steps per run")
    ap.add_argument("--smoke", action="store_true",
                    help="one repeat of 20 batches, results to a temp file: shows that it runs")
    ap.add_argument("--json", type=Path, help="results file (default: "
                    "benchmarks/results/history-cost.json, or a temp file with --smoke)")
    args = ap.parse_args()
    repeats, batches = (1, 20) if args.smoke else (args.repeats, args.batches)
    rate: dict[str, list[float]] = {"on": [], "off": []}
    usec: dict[str, list[float]] = {"on": [], "off": []}
    for r in range(repeats):
        order = ("on", "off") if r % 2 == 0 else ("off", "on")
        for setting in order:
            v, us = one(setting, batches)
            rate[setting].append(v)
            usec[setting].append(us)
            print(f"repeat {r + 1}/{repeats}, history {setting}: {v:,.0f} steps/s, "
                  f"Redis {us:.1f} µs/step", file=sys.stderr, flush=True)
    res: dict[str, Any] = {}
    for key, data in (("steps_per_s", rate), ("redis_us_per_step", usec)):
        on, off = statistics.median(data["on"]), statistics.median(data["off"])
        res[key] = {"on": data["on"], "off": data["off"], "median_on": on, "median_off": off,
                    "ratio": on / off,
                    "ratio_per_repeat": [a / b for a, b in zip(data["on"], data["off"],
                                                               strict=True)]}
    res.update(repeats=repeats, batches=batches, batch=100)
    path = results_file.destination("history-cost.json", args.smoke, args.json)
    results_file.write(path, res, args.smoke)
    print(render.history_cost(res))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
