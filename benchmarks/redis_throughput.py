"""Redis-mode benchmark: a local redis-server, two worker processes, one client process.

    python benchmarks/redis_throughput.py [--repeats 3] [--quick | --smoke] [--json PATH]

Figures (medians of --repeats runs, each on a fresh namespace; N for a full run, then
--quick, then --smoke):
  drain rate        N no-op step calls queued with no worker running (20,000 / 5,000 /
                    300); two async worker processes start; time from the first worker
                    ready to the last result at the client (results stored in Redis)
  3-step workflows  N workflows of three chained no-op steps, all in flight (2,000 /
                    500 / 50)
  latency p50/p99   N sequential submit-to-result round trips of one no-op step (500 /
                    200 / 50)
  memory per run    Redis used_memory growth per finished 3-step run (1,000 / 1,000 /
                    100 runs)
  worker RSS        resident memory of a worker process after the runs
Baselines in the same invocation: a raw round trip (PING) from this process, to put
the latency in proportion; and every figure again with history off (history=False:
no index of runs, no per-minute counts), interleaved with the runs with it on, to
show what history and breadcrumbs cost.

Writes benchmarks/results/redis-latest.json (with its provenance) and prints the two
tables the docs show (benchmarks/render.py renders both); --smoke (one repeat) writes
to a temp file instead.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import render, results_file  # noqa: E402
from tests.apps.durable import make_app  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402
from tests.support.workers import WorkerFleet  # noqa: E402

from blazing import _native  # noqa: E402

SECRET = "bench-secret"


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def used_memory(redis: RedisServer) -> int:
    for line in redis.cli("info", "memory").splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    raise RuntimeError("no used_memory in INFO")


def redis_cpu_s(redis: RedisServer) -> float:
    """CPU seconds the redis-server has used (user + system), from INFO cpu."""
    fields = dict(line.split(":", 1) for line in redis.cli("info", "cpu").splitlines()
                  if ":" in line)
    return float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])


def ping_us(port: int, n: int = 2000) -> float:
    with socket.create_connection(("127.0.0.1", port)) as s:
        lat = []
        for _ in range(n):
            t = time.perf_counter()
            s.sendall(b"PING\r\n")
            s.recv(16)
            lat.append(time.perf_counter() - t)
    return statistics.median(lat) * 1e6


def one_run(redis: RedisServer, tmp: Path, n_drain: int, n_wf: int, n_lat: int, n_mem: int,
            concurrency: int, history: bool = True) -> dict[str, float]:
    ns = "bench" + uuid.uuid4().hex[:8]
    env = {"BLAZING_REDIS_URL": redis.url, "BLAZING_NAMESPACE": ns, "BLAZING_SECRET": SECRET,
           "BLAZING_HISTORY": "1" if history else "0"}
    fleet = WorkerFleet(env, log=tmp / f"{ns}.log")
    client = make_app(redis_url=redis.url, namespace=ns, local_workers=False, secret=SECRET,
                      history=history)
    out: dict[str, float] = {}
    try:
        client._ensure_started()
        progress(f"  queueing {n_drain:,} no-op step calls ...")
        # Redis's own CPU per operation: the cost history adds inside Redis, far
        # less noisy on a shared VM than the wall-clock rates.
        cpu0 = redis_cpu_s(redis)
        handles = [client.noop(i) for i in range(n_drain)]
        workers = [fleet.start("async", concurrency, wait=False) for _ in range(2)]
        workers[0].wait_ready()
        t0 = time.perf_counter()
        workers[1].wait_ready()
        for h in handles:
            h.result_sync(timeout=600)
        out["drain_per_s"] = n_drain / (time.perf_counter() - t0)
        cpu1 = redis_cpu_s(redis)
        out["redis_cpu_us_per_step"] = (cpu1 - cpu0) / n_drain * 1e6
        progress(f"  drained: {out['drain_per_s']:,.0f}/s; {n_wf:,} 3-step workflows ...")

        t0 = time.perf_counter()
        hs = [client.three_noops(i) for i in range(n_wf)]
        for h in hs:
            h.result_sync(timeout=600)
        out["wf_per_s"] = n_wf / (time.perf_counter() - t0)
        out["redis_cpu_us_per_workflow"] = (redis_cpu_s(redis) - cpu1) / n_wf * 1e6
        del handles, hs  # done with them, as a client would be

        progress(f"  {out['wf_per_s']:,.0f} workflows/s; {n_lat} sequential round trips ...")
        lat = []
        for i in range(n_lat):
            t = time.perf_counter()
            client.noop(i).result_sync(timeout=60)
            lat.append(time.perf_counter() - t)
        lat.sort()
        out["p50_us"] = lat[len(lat) // 2] * 1e6
        out["p99_us"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6

        progress("  memory per finished run ...")
        before = used_memory(redis)
        hs = [client.three_noops(i) for i in range(n_mem)]
        for h in hs:
            h.result_sync(timeout=600)
        out["bytes_per_run"] = (used_memory(redis) - before) / n_mem
        out["worker_rss_mb"] = max(rss_mb(w.pid) for w in workers)
    finally:
        client.stop_sync()
        fleet.close()
    return out


# N per figure: drained steps, workflows, round trips, runs for the memory figure.
SIZES = {"full": (20_000, 2_000, 500, 1_000), "quick": (5_000, 500, 200, 1_000),
         "smoke": (300, 50, 50, 100)}


def main() -> None:
    """Measure with history on and off, write the results file, print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller N")
    size.add_argument("--smoke", action="store_true",
                      help="tiny N, one repeat, results to a temp file: shows that it runs")
    ap.add_argument("--concurrency", type=int, default=256,
                    help="async slots per worker process")
    ap.add_argument("--json", type=Path, help="results file (default: "
                    "benchmarks/results/redis-latest.json, or a temp file with --smoke)")
    args = ap.parse_args()
    repeats = 1 if args.smoke else args.repeats
    n_drain, n_wf, n_lat, n_mem = SIZES["smoke" if args.smoke else
                                        "quick" if args.quick else "full"]
    samples: dict[str, list[float]] = {}
    off: dict[str, list[float]] = {}
    with RedisServer() as redis, tempfile.TemporaryDirectory() as tmp:
        ping = ping_us(redis.port)
        for r in range(1, repeats + 1):
            # History on and off interleaved, in the order on-off, off-on, ... so
            # drift of the machine over the invocation hits both alike.
            order = ((True, samples), (False, off))
            for history, into in (order if r % 2 else order[::-1]):
                progress(f"run {r}/{repeats}, history {'on' if history else 'off'}")
                for k, v in one_run(redis, Path(tmp), n_drain, n_wf, n_lat, n_mem,
                                    args.concurrency, history).items():
                    into.setdefault(k, []).append(v)
        version = redis.cli("info", "server").split("redis_version:")[1].split()[0]
    res: dict[str, Any] = {
        "samples": samples, "median": {k: statistics.median(v) for k, v in samples.items()},
        "history_off": {"samples": off,
                        "median": {k: statistics.median(v) for k, v in off.items()}},
        "n": {"drain": n_drain, "workflows": n_wf, "latency": n_lat, "memory": n_mem},
        "ping_us": ping, "redis": version,
        "repeats": repeats, "concurrency": args.concurrency,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform(), "core": _native.version()},
    }
    path = results_file.destination("redis-latest.json", args.smoke, args.json)
    results_file.write(path, res, args.smoke)
    print(render.redis(res))
    print("History and breadcrumbs on versus off (same invocation, interleaved):\n")
    print(render.redis_history(res))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
