"""The optimizer's seeded simulation, stored: what core/optimizer/README.md and
docs/deployment.md show.

    python benchmarks/optsim.py [--seeds 5] [--smoke] [--json PATH]

Builds cmd/optsim once and runs ``optsim -markdown -seed N`` at the default interval
(5 s) and at 30 s for seeds 1..--seeds, keeping each run's output as printed. Writes
benchmarks/results/optsim.json (with its provenance) and prints the tables the docs
show (benchmarks/render.py). The simulation is deterministic: tests/test_tables.py runs
the stored commands again and compares. --smoke: seed 1 only, results to a temp file.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import render, results_file  # noqa: E402

INTERVALS = {"5s": [], "30s": ["-interval", "30s"]}  # interval -> extra flags


def flags(interval: str, seed: int) -> list[str]:
    """cmd/optsim's flags for one stored run."""
    return ["-markdown", "-seed", str(seed), *INTERVALS[interval]]


def build(out_dir: Path) -> Path:
    """cmd/optsim built into `out_dir`; its path."""
    exe = out_dir / "optsim"
    subprocess.run(["go", "build", "-o", str(exe), "./cmd/optsim"], cwd=ROOT, check=True,
                   timeout=600)
    return exe


def simulate(exe: Path, interval: str, seed: int) -> str:
    """What `optsim -markdown` prints for one interval and seed."""
    out = subprocess.run([str(exe), *flags(interval, seed)], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"optsim {' '.join(flags(interval, seed))} failed:\n{out.stderr}")
    return out.stdout


def run_all(seeds: list[int]) -> list[dict[str, Any]]:
    """Every interval and seed: the command and its output."""
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(Path(tmp))
        for interval in INTERVALS:
            for seed in seeds:
                print(f"optsim at {interval}, seed {seed} ...", file=sys.stderr, flush=True)
                runs.append({"interval": interval, "seed": seed,
                             "command": "go run ./cmd/optsim " + " ".join(flags(interval, seed)),
                             "markdown": simulate(exe, interval, seed)})
    return runs


def main() -> None:
    """Simulate, write the results file, print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5, help="seeds 1..N")
    ap.add_argument("--smoke", action="store_true",
                    help="seed 1 only, results to a temp file: shows that it runs")
    ap.add_argument("--json", type=Path, help="results file (default: "
                    "benchmarks/results/optsim.json, or a temp file with --smoke)")
    args = ap.parse_args()
    seeds = [1] if args.smoke else list(range(1, args.seeds + 1))
    res: dict[str, Any] = {"runs": run_all(seeds)}
    path = results_file.destination("optsim.json", args.smoke, args.json)
    results_file.write(path, res, args.smoke)
    for interval in INTERVALS:
        print(render.optimizer_table(interval)(res))
    print(render.optimizer_seeds(res))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
