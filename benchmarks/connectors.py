"""Connectors: a pooled connection per step against a new one per step.

    python benchmarks/connectors.py [--steps 400] [--repeats 5] [--concurrency 16]
                                    [--smoke] [--json PATH]

Starts a PostgreSQL cluster and the uvicorn test server (tests/support), then runs,
in an embedded app, ``--steps`` steps per round, ``--concurrency`` at a time:

- ``SELECT 1`` through an ``SQLConnector`` (asyncpg, pooled) against the same query on a
  new asyncpg connection per step (through SQLAlchemy with ``NullPool``: the engine
  is made once, the connection per call, as a step without a pool does);
- ``GET /ping`` through an ``HTTPConnector`` (one ``httpx.AsyncClient`` kept alive)
  against a new ``httpx.AsyncClient`` per call.

Each figure is the median of ``--repeats`` rounds, with the spread (min–max); the
ratio is pooled ÷ new per step. Raw samples, the versions and the provenance go to
benchmarks/results/connectors-latest.json; the table printed is the one the docs show
(benchmarks/render.py). --smoke: one round of 40 steps, results to a temp file.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import render, results_file  # noqa: E402
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
    """Run the rounds, write the results file, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--smoke", action="store_true",
                    help="one round of 40 steps, results to a temp file: shows that it runs")
    ap.add_argument("--json", type=Path, help="results file (default: "
                    "benchmarks/results/connectors-latest.json, or a temp file with --smoke)")
    args = ap.parse_args()
    warm_up = 50
    if args.smoke:
        args.steps, args.repeats, warm_up = 40, 1, 5
    samples: dict[str, list[float]] = {}
    with PostgresServer() as pg, HTTPServer() as web:
        app = make_app(pg, web, args.concurrency)
        for name in (s for _, a, b in PAIRS for s in (a, b)):
            app.run_sync("batch", name, warm_up, args.concurrency)  # warm up: pools, imports
        for _ in range(args.repeats):
            for _, pooled, new in PAIRS:  # interleaved, so drift hits both alike
                for name in (pooled, new):
                    samples.setdefault(name, []).append(
                        app.run_sync("batch", name, args.steps, args.concurrency))
        app.stop_sync()
        pg_version = pg.psql("SHOW server_version").split()[0]
    rows = []
    for label, pooled, new in PAIRS:
        p, n = statistics.median(samples[pooled]), statistics.median(samples[new])
        rows.append({"figure": label, "pooled": p, "new": n, "ratio": p / n,
                     "pooled_runs": samples[pooled], "new_runs": samples[new]})
    versions = {"PostgreSQL": pg_version}
    for dist in ("SQLAlchemy", "asyncpg", "httpx", "uvicorn"):
        versions[dist] = importlib.metadata.version(dist)
    res = {"args": {"steps": args.steps, "repeats": args.repeats,
                    "concurrency": args.concurrency},
           "versions": versions, "rows": rows}
    path = results_file.destination("connectors-latest.json", args.smoke, args.json)
    results_file.write(path, res, args.smoke)
    print(render.connectors(res))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
