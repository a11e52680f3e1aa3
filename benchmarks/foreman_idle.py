"""The foreman's own cost when idle: resident memory and CPU share.

    python benchmarks/foreman_idle.py [--seconds 20]

Starts a redis-server, a foreman with one async and one blocking worker and
nothing to do, lets it settle, then reads /proc for the foreman (and its
workers) over the measuring window. Targets: foreman < 30 MB resident and
< 1% of a core; idle worker < 80 MB.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.redis_server import RedisServer, free_port  # noqa: E402

from blazing.foreman import binary  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    with RedisServer() as redis:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BLAZING_SECRET": "idle"}
        fm = subprocess.Popen(
            [str(binary()), "--redis-url", redis.url, "--namespace", "idle",
             "--app", "tests.apps.durable:app", "--python", sys.executable,
             "--metrics-addr", f"127.0.0.1:{free_port()}"],
            cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
        try:
            print("settling 5 s ...", file=sys.stderr)
            time.sleep(5)  # let the workers start: we measure idling, not starting
            c0, t0 = cpu_seconds(fm.pid), time.monotonic()
            print(f"measuring {args.seconds:.0f} s ...", file=sys.stderr)
            time.sleep(args.seconds)  # the measuring window itself
            cpu = (cpu_seconds(fm.pid) - c0) / (time.monotonic() - t0) * 100
            kids = subprocess.run(["pgrep", "-P", str(fm.pid)], capture_output=True,
                                  text=True).stdout.split()
            print("| process | resident | CPU | target |\n|---|---|---|---|")
            print(f"| foreman | {rss_mb(fm.pid):.1f} MB | {cpu:.2f}% of a core | "
                  "< 30 MB, < 1% |")
            for k in kids:
                print(f"| idle worker {k} | {rss_mb(int(k)):.1f} MB | | < 80 MB |")
        finally:
            fm.send_signal(signal.SIGTERM)
            fm.wait(60)


if __name__ == "__main__":
    main()
