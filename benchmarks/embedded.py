"""Embedded-mode benchmark: Blazing() with no arguments, everything in this process.

Each figure is the median of --repeats runs; a baseline measured in the same
invocation puts it in proportion (the machine may be noisy, the ratio less so).

    python benchmarks/embedded.py [--repeats 5] [--quick | --smoke] [--json PATH]

Figures:
  step calls/s (sequential)  a workflow awaiting N no-op async steps one by one
  step calls/s (gather)      a workflow gathering N no-op async steps
  3-step workflows/s         N workflows of three chained no-op steps, all in flight
  round trip p50/p99         client submit-to-result of one no-op step, sequentially
  boundary crossing          one empty command batch into the Go core and back
Baselines: the same no-op coroutine awaited directly (no engine) and run as an
asyncio Task; a ctypes call to libc's labs() for the crossing.

Writes benchmarks/results/embedded-latest.json (with its provenance) and prints the
table the docs show (benchmarks/render.py renders both). --smoke: tiny sizes, one
repeat, results to a temp file.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgpack  # noqa: E402
from benchmarks import render, results_file  # noqa: E402

from blazing import Blazing, _native  # noqa: E402

app = Blazing()


@app.step
async def noop(x: int) -> int:
    """Does nothing: measures the engine, not the work."""
    return x


@app.workflow
async def sequential(n: int) -> int:
    """Await n step calls one after the other."""
    for i in range(n):
        await noop(i)
    return n


@app.workflow
async def fan_out(n: int) -> int:
    """Gather n step calls."""
    results = await asyncio.gather(*(noop(i) for i in range(n)))
    return len(results)


@app.workflow
async def three_steps(x: int) -> int:
    """Three chained no-op steps."""
    return await noop(await noop(await noop(x)))


async def _plain(x: int) -> int:
    return x


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


async def bench_sequential(n: int) -> float:
    t = time.perf_counter()
    await app.sequential(n).result()
    return n / (time.perf_counter() - t)


async def bench_fan_out(n: int) -> float:
    t = time.perf_counter()
    await app.fan_out(n).result()
    return n / (time.perf_counter() - t)


async def bench_three(n: int) -> float:
    t = time.perf_counter()
    handles = [app.three_steps(i) for i in range(n)]
    for h in handles:
        await h.result()
    return n / (time.perf_counter() - t)


async def bench_latency(n: int) -> tuple[float, float]:
    lat = []
    for i in range(n):
        t = time.perf_counter()
        await app.noop(i).result()
        lat.append(time.perf_counter() - t)
    lat.sort()
    return lat[len(lat) // 2] * 1e6, lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6


async def baseline_direct(n: int) -> float:
    t = time.perf_counter()
    for i in range(n):
        await _plain(i)
    return n / (time.perf_counter() - t)


async def baseline_tasks(n: int) -> float:
    loop = asyncio.get_running_loop()
    t = time.perf_counter()
    for i in range(n):
        await loop.create_task(_plain(i))
    return n / (time.perf_counter() - t)


def crossing_us(n: int) -> float:
    session = _native.Session({"inbox": "bench-crossing", "async": 0, "blocking": 0})
    frame = msgpack.packb([])
    try:
        for _ in range(1000):
            session.batch_raw(frame)
        t = time.perf_counter()
        for _ in range(n):
            session.batch_raw(frame)
        return (time.perf_counter() - t) / n * 1e6
    finally:
        session.close()


def ctypes_baseline_us(n: int) -> float:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    labs = libc.labs
    labs.argtypes = [ctypes.c_long]
    labs.restype = ctypes.c_long
    t = time.perf_counter()
    for i in range(n):
        labs(i)
    return (time.perf_counter() - t) / n * 1e6


def median(xs: list[float]) -> float:
    return statistics.median(xs)


# Sizes: calls per step figure, workflows, round trips, crossings.
SIZES = {"full": (20_000, 4_000, 1_000, 50_000), "quick": (5_000, 1_000, 300, 50_000),
         "smoke": (500, 100, 50, 2_000)}


async def run(repeats: int, size: str) -> dict[str, Any]:
    """Every figure `repeats` times; samples and medians."""
    n_steps, n_wf, n_lat, n_cross = SIZES[size]
    samples: dict[str, list[float]] = {k: [] for k in (
        "seq", "gather", "three", "p50", "p99", "direct", "tasks", "cross", "ctypes")}
    async with app:
        await app.sequential(200).result()  # warm up
        for r in range(1, repeats + 1):
            progress(f"run {r}/{repeats}: sequential steps ...")
            samples["seq"].append(await bench_sequential(n_steps))
            progress(f"run {r}/{repeats}: gathered steps ...")
            samples["gather"].append(await bench_fan_out(n_steps))
            progress(f"run {r}/{repeats}: 3-step workflows ...")
            samples["three"].append(await bench_three(n_wf))
            progress(f"run {r}/{repeats}: round-trip latency ...")
            p50, p99 = await bench_latency(n_lat)
            samples["p50"].append(p50)
            samples["p99"].append(p99)
            progress(f"run {r}/{repeats}: baselines and boundary crossing ...")
            samples["direct"].append(await baseline_direct(n_steps * 10))
            samples["tasks"].append(await baseline_tasks(n_steps * 5))
            samples["cross"].append(crossing_us(n_cross))
            samples["ctypes"].append(ctypes_baseline_us(n_cross * 4))
    med = {k: median(v) for k, v in samples.items()}
    return {"samples": samples, "median": med, "n_steps": n_steps, "n_workflows": n_wf,
            "n_latency": n_lat, "repeats": repeats}


def main() -> None:
    """Measure, write the results file, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller N")
    size.add_argument("--smoke", action="store_true",
                      help="tiny N, one repeat, results to a temp file: shows that it runs")
    ap.add_argument("--json", type=Path, help="results file (default: "
                    "benchmarks/results/embedded-latest.json, or a temp file with --smoke)")
    args = ap.parse_args()
    repeats = 1 if args.smoke else args.repeats
    res = asyncio.run(run(repeats, "smoke" if args.smoke else "quick" if args.quick else "full"))
    res["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                      "platform": platform.platform(), "core": _native.version()}
    path = results_file.destination("embedded-latest.json", args.smoke, args.json)
    results_file.write(path, res, args.smoke)
    print(render.embedded(res))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
