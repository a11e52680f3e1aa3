"""What history costs on the hot path, measured without Python in the way.

Runs the Go benchmark ``BenchmarkSubmitReserveComplete`` (core/store/redisstore: batches
of 100 root steps through submit, reserve, complete and the caller's pop against a
fresh ``redis-server``) with history on (each run written to the index of runs) and off,
alternating on-off / off-on per repeat so the machine's drift hits both alike. Prints
medians, the ratio and the spread of per-repeat ratios; writes the samples with their
provenance to ``benchmarks/results/history-cost.json``.

    python benchmarks/history_cost.py [--repeats 10] [--batches 300]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.provenance import provenance  # noqa: E402

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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--batches", type=int, default=300, help="batches of 100 steps per run")
    ap.add_argument("--json", type=Path,
                    default=ROOT / "benchmarks" / "results" / "history-cost.json")
    args = ap.parse_args()
    rate: dict[str, list[float]] = {"on": [], "off": []}
    usec: dict[str, list[float]] = {"on": [], "off": []}
    for r in range(args.repeats):
        order = ("on", "off") if r % 2 == 0 else ("off", "on")
        for setting in order:
            v, us = one(setting, args.batches)
            rate[setting].append(v)
            usec[setting].append(us)
            print(f"repeat {r + 1}/{args.repeats}, history {setting}: {v:,.0f} steps/s, "
                  f"Redis {us:.1f} µs/step", file=sys.stderr, flush=True)
    summary = {}
    print("| figure | history on, median | history off, median | on / off | "
          "on / off per repeat (min–median–max) |\n|---|---|---|---|---|")
    for label, key, data, fmt in (("steps/s", "steps_per_s", rate, ",.0f"),
                                  ("Redis µs per step", "redis_us_per_step", usec, ".1f")):
        ratios = [a / b for a, b in zip(data["on"], data["off"], strict=True)]
        on, off = statistics.median(data["on"]), statistics.median(data["off"])
        summary[key] = {"on": data["on"], "off": data["off"], "median_on": on,
                        "median_off": off, "ratio": on / off, "ratio_per_repeat": ratios}
        print(f"| {label} | {format(on, fmt)} | {format(off, fmt)} | {on / off:.3f} | "
              f"{min(ratios):.2f}–{statistics.median(ratios):.2f}–{max(ratios):.2f} |")
    res = {**summary, "repeats": args.repeats, "batches": args.batches, "batch": 100,
           "provenance": provenance()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(res, indent=2))
    print(f"\nsamples: {args.json}")


if __name__ == "__main__":
    main()
