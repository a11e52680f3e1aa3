"""The foreman's own cost when idle: resident memory and CPU share.

    python benchmarks/foreman_idle.py [--seconds 30] [--windows 3] [--smoke] [--json PATH]

Starts a redis-server and a foreman with one async and one blocking worker and nothing
to do, waits until both workers serve (the foreman's metrics say so), lets them settle,
then reads /proc for the foreman and its workers over ``--windows`` consecutive windows
of ``--seconds``. Targets: foreman < 30 MB resident and < 1% of a core; idle worker
< 80 MB. Writes benchmarks/results/foreman-idle.json (with its provenance) and prints
the table the docs show (benchmarks/render.py). --smoke: one window of 2 s, results to
a temp file.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import render, results_file  # noqa: E402
from tests.support.redis_server import RedisServer, free_port  # noqa: E402

from blazing.foreman import binary  # noqa: E402

SETTLE_S = 3.0  # after the workers serve: their imports and first beats are start-up


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """A process's resident memory in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serving_workers(metrics_url: str) -> int:
    """How many workers the foreman's metrics show serving (0 while it cannot be read)."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return 0
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith("blazing_workers{") and 'state="serving"' in line)


def wait_serving(metrics_url: str, want: int, fm: subprocess.Popen[bytes],
                 timeout: float = 120) -> None:
    """Wait (bounded) until `want` workers serve."""
    deadline = time.monotonic() + timeout
    while serving_workers(metrics_url) < want:
        if fm.poll() is not None:
            raise SystemExit(f"the foreman exited with code {fm.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{want} workers did not serve within {timeout:.0f} s")
        time.sleep(0.2)  # polling the metrics endpoint: there is nothing to wait on


def measure(fm_pid: int, workers: list[int], seconds: float) -> dict[str, Any]:
    """CPU share and resident memory of the foreman and its workers over one window."""
    pids = [fm_pid, *workers]
    c0, t0 = {p: cpu_seconds(p) for p in pids}, time.monotonic()
    time.sleep(seconds)  # the measuring window itself
    wall = time.monotonic() - t0
    pct = {p: (cpu_seconds(p) - c0[p]) / wall * 100 for p in pids}
    return {"foreman_rss_mb": rss_mb(fm_pid), "foreman_cpu_pct": pct[fm_pid],
            "worker_rss_mb": [rss_mb(p) for p in workers],
            "worker_cpu_pct": [pct[p] for p in workers]}


def main() -> None:
    """Start, wait for the workers, measure the windows, write and print."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--smoke", action="store_true",
                    help="one window of 2 s, results to a temp file: shows that it runs")
    ap.add_argument("--json", type=Path, help="results file (default: "
                    "benchmarks/results/foreman-idle.json, or a temp file with --smoke)")
    args = ap.parse_args()
    seconds, n_windows = (2.0, 1) if args.smoke else (args.seconds, args.windows)
    metrics_port = free_port()
    with RedisServer() as redis:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "BLAZING_SECRET": "idle"}
        fm = subprocess.Popen(
            [str(binary()), "--redis-url", redis.url, "--namespace", "idle",
             "--app", "tests.apps.durable:app", "--python", sys.executable,
             "--async-workers", "1", "--blocking-workers", "1",
             "--metrics-addr", f"127.0.0.1:{metrics_port}"],
            cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
        try:
            print("waiting for both workers to serve ...", file=sys.stderr)
            wait_serving(f"http://127.0.0.1:{metrics_port}/metrics", 2, fm)
            time.sleep(SETTLE_S)  # we measure idling, not starting
            workers = [int(k) for k in subprocess.run(
                ["pgrep", "-P", str(fm.pid)], capture_output=True, text=True).stdout.split()]
            windows = []
            for i in range(n_windows):
                print(f"window {i + 1}/{n_windows}: {seconds:g} s ...", file=sys.stderr)
                windows.append(measure(fm.pid, workers, seconds))
        finally:
            fm.send_signal(signal.SIGTERM)
            fm.wait(60)
    res: dict[str, Any] = {"seconds": seconds, "windows": windows}
    path = results_file.destination("foreman-idle.json", args.smoke, args.json)
    results_file.write(path, res, args.smoke)
    print(render.foreman_idle(res))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
