"""Connectors: a pooled connection per step against a new one per step.

    python benchmarks/connectors.py [--steps 400] [--repeats 5] [--concurrency 16]

Starts a PostgreSQL cluster and the uvicorn test server (tests/support), then runs,
in an embedded app, ``--steps`` steps per round, ``--concurrency`` at a time:

- ``SELECT 1`` through an ``SQLConnector`` (asyncpg, pooled) against the same query on a
  new asyncpg connection per step (through SQLAlchemy with ``NullPool``: the engine
  is made once, the connection per call, as a step without a pool does);
- ``GET /ping`` through an ``HTTPConnector`` (one ``httpx.AsyncClient`` kept alive)
  against a new ``httpx.AsyncClient`` per call.

Each figure is the median of ``--repeats`` rounds, with the spread (min–max); the
ratio is pooled ÷ new per step. Raw samples go to benchmarks/results/connectors-latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.http_server import HTTPServer  # noqa: E402
from tests.support.pg_server import PostgresServer  # noqa: E402

from blazing import Blazing  # noqa: E402
from blazing.connectors import HTTPConnector, SQLConnector  # noqa: E402


def make_app(pg: PostgresServer, web: HTTPServer, concurrency: int) -> Blazing:
    """The benchmark's app: four steps, two through connectors and two without."""
    import httpx
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    db = SQLConnector(pg.url(), name="db", pool_size=concurrency, max_overflow=0)
    api = HTTPConnector(web.url, name="api", pool_size=concurrency, max_overflow=0)
    app = Blazing(connectors={"db": db, "api": api},
                  worker_config={"async_workers": 1, "async_concurrency": 256,
                                 "auto_optimize": False})
    unpooled = {}

    @app.step
    async def select_pooled() -> int:
        return await db.scalar("SELECT 1")

    @app.step
    async def select_new_connection() -> int:
        engine = unpooled.get("engine")
        if engine is None:
            engine = unpooled["engine"] = create_async_engine(pg.url(), poolclass=NullPool)
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT 1"))).scalar()

    @app.step
    async def get_pooled() -> int:
        return (await api.get("/ping")).status_code

    @app.step
    async def get_new_client() -> int:
        async with httpx.AsyncClient(base_url=web.url) as client:
            return (await client.get("/ping")).status_code

    @app.workflow
    async def batch(step: str, n: int, at_once: int) -> float:
        fn = {"select_pooled": select_pooled, "select_new_connection": select_new_connection,
              "get_pooled": get_pooled, "get_new_client": get_new_client}[step]
        sem = asyncio.Semaphore(at_once)

        async def one() -> Any:
            async with sem:
                return await fn()

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / (time.perf_counter() - t0)

    return app


PAIRS = [("SELECT 1 per step", "select_pooled", "select_new_connection"),
         ("HTTP GET per step", "get_pooled", "get_new_client")]


def main() -> int:
    """Run the rounds and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    samples: dict[str, list[float]] = {}
    with PostgresServer() as pg, HTTPServer() as web:
        app = make_app(pg, web, args.concurrency)
        for name in (s for _, a, b in PAIRS for s in (a, b)):
            app.run_sync("batch", name, 50, args.concurrency)  # warm up: pools, imports
        for _ in range(args.repeats):
            for _, pooled, new in PAIRS:  # interleaved, so drift hits both alike
                for name in (pooled, new):
                    samples.setdefault(name, []).append(
                        app.run_sync("batch", name, args.steps, args.concurrency))
        app.stop_sync()
        pg_version = pg.psql("SHOW server_version")
    rows = []
    print("| per step | through the connector (steps/s) | new connection per step "
          "(steps/s) | ratio |\n|---|---:|---:|---:|")
    for label, pooled, new in PAIRS:
        p, n = statistics.median(samples[pooled]), statistics.median(samples[new])
        rows.append({"figure": label, "pooled": p, "new": n, "ratio": p / n,
                     "pooled_runs": samples[pooled], "new_runs": samples[new]})
        print(f"| {label} | {p:,.0f} ({min(samples[pooled]):,.0f}–{max(samples[pooled]):,.0f})"
              f" | {n:,.0f} ({min(samples[new]):,.0f}–{max(samples[new]):,.0f}) | "
              f"{p / n:.1f}× |")
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, cwd=ROOT).stdout.strip()
    machine = (f"{platform.processor() or platform.machine()}, Python "
               f"{platform.python_version()}, PostgreSQL {pg_version}, git {git}")
    print(f"\n{args.steps} steps per round, {args.concurrency} at a time, median of "
          f"{args.repeats} rounds (min–max); {machine}")
    out = ROOT / "benchmarks" / "results" / "connectors-latest.json"
    out.write_text(json.dumps({"args": vars(args), "machine": machine, "rows": rows},
                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
