"""Every benchmark, once, at tiny sizes: each completes and prints measured figures.

    python benchmarks/smoke.py [--only NAME,...]      (make bench-smoke)

Runs each benchmark script with ``--smoke`` (tiny sizes, one repeat, results to a temp
directory, never over a committed results file) and checks that it exits 0, prints a
table with figures in it, and wrote a results file flagged as a smoke run's; and that no
committed results file changed. It says nothing about speed. A benchmark whose server
or tool is missing (PostgreSQL for the connectors, redis-server, Go) is skipped with the
reason printed; the peers benchmark runs only what is installed (our row always).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
TIMEOUT_S = 300  # per benchmark: far above what each takes, so a hang still ends


def missing_redis() -> str | None:
    return None if shutil.which("redis-server") else "redis-server is not installed"


def missing_go() -> str | None:
    return None if shutil.which("go") else "go is not installed"


def missing_go_and_redis() -> str | None:
    return missing_go() or missing_redis()


def missing_callgrind() -> str | None:
    if not shutil.which("callgrind_control"):
        return "valgrind (callgrind_control) is not installed"
    return missing_go_and_redis()


def missing_postgres() -> str | None:
    sys.path.insert(0, str(ROOT))
    from tests.support.pg_server import bindir

    try:
        bindir()
    except RuntimeError as e:
        return str(e)
    return None


@dataclass(frozen=True)
class Smoke:
    """One benchmark's smoke run."""

    name: str
    script: str
    results: str  # the results file it writes into the smoke directory
    missing: Callable[[], str | None]  # why it cannot run here, or None


SMOKES = [
    Smoke("embedded", "benchmarks/embedded.py", "embedded-latest.json", lambda: None),
    Smoke("redis", "benchmarks/redis_throughput.py", "redis-latest.json", missing_redis),
    Smoke("history-cost", "benchmarks/history_cost.py", "history-cost.json",
          missing_go_and_redis),
    Smoke("history-instructions", "benchmarks/history_instructions.py",
          "history-instructions.json", missing_callgrind),
    Smoke("connectors", "benchmarks/connectors.py", "connectors-latest.json", missing_postgres),
    Smoke("foreman-idle", "benchmarks/foreman_idle.py", "foreman-idle.json", missing_redis),
    Smoke("optsim", "benchmarks/optsim.py", "optsim.json", missing_go),
    Smoke("peers", "benchmarks/peers/run.py", "peers-latest.json", missing_redis),
]

SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")
NUMBER = re.compile(r"\d")


def figure_rows(stdout: str) -> int:
    """How many rows of a markdown table in the output hold a number in a cell after the
    first (the first names the figure); header rows (above a |---| line) do not count."""
    lines = stdout.splitlines()
    count = 0
    for i, line in enumerate(lines):
        if not line.startswith("|") or SEPARATOR.match(line):
            continue
        if i + 1 < len(lines) and SEPARATOR.match(lines[i + 1]):
            continue  # a header
        cells = line.strip().strip("|").split("|")[1:]
        count += any(NUMBER.search(c) for c in cells)
    return count


def committed_results() -> dict[str, str]:
    """The committed results files' hashes (a smoke run must not change them)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(RESULTS.glob("*.json"))}


def run_one(smoke: Smoke, out_dir: Path) -> tuple[str, str]:
    """Run one smoke; (verdict, detail) with verdict ok, skip or FAIL."""
    why = smoke.missing()
    if why:
        return "skip", why
    env = {**os.environ, "BLAZING_BENCH_SMOKE_DIR": str(out_dir), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), str(ROOT),
                                          *filter(None, [os.environ.get("PYTHONPATH")])])}
    try:
        proc = subprocess.run([sys.executable, smoke.script, "--smoke"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return "FAIL", f"did not finish within {TIMEOUT_S} s"
    tail = "\n".join((proc.stderr or "").splitlines()[-15:])
    if proc.returncode != 0:
        return "FAIL", f"exit code {proc.returncode}:\n{tail}"
    rows = figure_rows(proc.stdout)
    if rows == 0:
        return "FAIL", f"printed no table of figures:\n{proc.stdout[-2000:]}"
    path = out_dir / smoke.results
    if not path.exists():
        return "FAIL", f"wrote no {path.name} into the smoke directory"
    res = json.loads(path.read_text())
    if not res.get("smoke") or "provenance" not in res:
        return "FAIL", f"{path.name} is not flagged as a smoke run's, or lacks its provenance"
    return "ok", f"{rows} table rows of figures"


def main(argv: list[str] | None = None) -> int:
    """Run the smokes; exit 1 if any failed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated names: " + ", ".join(s.name for s in SMOKES))
    args = ap.parse_args(argv)
    chosen = SMOKES
    if args.only:
        names = set(args.only.split(","))
        unknown = names - {s.name for s in SMOKES}
        if unknown:
            raise SystemExit(f"unknown benchmarks: {', '.join(sorted(unknown))}")
        chosen = [s for s in SMOKES if s.name in names]
    before = committed_results()
    failed = 0
    t_all = time.monotonic()
    width = max(len(s.name) for s in chosen)
    with tempfile.TemporaryDirectory(prefix="blazing-bench-smoke-") as tmp:
        for smoke in chosen:
            t0 = time.monotonic()
            verdict, detail = run_one(smoke, Path(tmp))
            failed += verdict == "FAIL"
            first, _, rest = detail.partition("\n")
            print(f"{verdict:4} {smoke.name:{width}} {time.monotonic() - t0:6.1f} s  {first}",
                  flush=True)
            if rest:
                print("     " + rest.replace("\n", "\n     "), flush=True)
    if committed_results() != before:
        print("FAIL a smoke run changed a committed file in benchmarks/results/")
        failed += 1
    print(f"bench-smoke: {len(chosen) - failed} of {len(chosen)} passed or skipped, "
          f"{time.monotonic() - t_all:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
