"""The README's foreman charts, from a real run: a CPU burst, then an I/O burst.

    python benchmarks/foreman_charts_demo.py [--png docs/images/foreman-charts.png]
                                             [--html FILE] [--cpu 240] [--io 900]

Starts a redis-server, a foreman with 2 async + 2 blocking workers (each lane 1..3)
and a 1 s optimization interval, then submits ``--cpu`` runs of the CPU-bound
``burn`` step (blocking lane) and waits for them, then ``--io`` runs of the I/O-bound
``wait_io`` step (async lane), and draws ``blazing charts --png`` over the whole run:
the mix should move toward blocking during the first burst and back toward async
during the second.
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

from tests.apps.durable import make_app  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

SECRET = "charts-demo"
NAMESPACE = "chartsdemo"


def burst(name: str, handles: list, expect: object) -> float:
    """Wait for every run of a burst; its duration in seconds."""
    t0 = time.monotonic()
    results = [h.result_sync(timeout=600) for h in handles]
    if expect is not None:
        assert all(r == expect for r in results), f"{name}: unexpected results"
    took = time.monotonic() - t0
    print(f"{name}: {len(handles)} runs done in {took:.1f} s", file=sys.stderr)
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--png", default=str(ROOT / "docs" / "images" / "foreman-charts.png"))
    ap.add_argument("--html", help="also write the self-contained HTML page here")
    ap.add_argument("--cpu", type=int, default=240, help="burn(60) runs in the CPU burst")
    ap.add_argument("--io", type=int, default=900, help="wait_io(150) runs in the I/O burst")
    ap.add_argument("--quiet-s", type=float, default=8.0,
                    help="seconds of quiet before, between and after the bursts")
    args = ap.parse_args()
    with RedisServer() as redis:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BLAZING_SECRET": SECRET}
        fm = subprocess.Popen(
            [sys.executable, "-m", "blazing.foreman", "--redis-url", redis.url,
             "--namespace", NAMESPACE, "--app", "tests.apps.durable:app", "--metrics-addr", "",
             "--async-workers", "2", "--blocking-workers", "2", "--min-async", "1",
             "--max-async", "3", "--min-blocking", "1", "--max-blocking", "3",
             "--async-concurrency", "4", "--blocking-concurrency", "1",
             "--optimization-interval", "1"],
            cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
        client = make_app(redis_url=redis.url, namespace=NAMESPACE, local_workers=False,
                          secret=SECRET)
        start = time.time()
        try:
            # The quiet stretches are part of the picture: the mix at rest.
            time.sleep(args.quiet_s)
            burst("CPU burst", [client.burn(60) for _ in range(args.cpu)], None)
            time.sleep(args.quiet_s)
            burst("I/O burst", [client.wait_io(150) for _ in range(args.io)], 150)
            time.sleep(args.quiet_s)
            since = f"{time.time() - start + 2:.0f}s"
            cmd = [sys.executable, "-m", "blazing.monitoring.monitor_foreman_charts",
                   "--redis-url", redis.url, "--namespace", NAMESPACE, "--since", since,
                   "--png", args.png]
            if args.html:
                cmd += ["--html", args.html]
            out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                                 timeout=120)
            sys.stdout.write(out.stdout)
            sys.stderr.write(out.stderr)
            return out.returncode
        finally:
            client.stop_sync()
            fm.send_signal(signal.SIGTERM)
            fm.wait(60)


if __name__ == "__main__":
    sys.exit(main())
