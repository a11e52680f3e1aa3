"""FastAPI with Blazing Flow: the app starts and stops with the web server's lifespan.

Embedded (everything in the web process, no setup):

    uvicorn fastapi_app:api

With Redis, the web processes only submit and the workers run the work:

    export BLAZING_REDIS_URL=redis://localhost:6379/0 BLAZING_SECRET=change-me
    BLAZING_LOCAL_WORKERS=0 uvicorn fastapi_app:api --workers 2
    python -m blazing.worker --app fastapi_app:flow --type async
    python -m blazing.worker --app fastapi_app:flow --type blocking

    curl -X POST 'localhost:8000/quotes/widget?qty=3'
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException

from blazing import Blazing
from blazing.errors import RunNotFound

# Settings come from the environment (BLAZING_REDIS_URL, BLAZING_LOCAL_WORKERS, ...):
# the same module serves the web processes and the worker processes.
flow = Blazing()

PRICES = {"widget": 2.50, "gadget": 10.00}


@flow.step
async def fetch_price(sku: str) -> float:
    """An I/O-bound step: runs on the event loop of an async worker."""
    await asyncio.sleep(0.01)  # stands for a call to a pricing service
    if sku not in PRICES:
        raise KeyError(f"no price for {sku!r}")
    return PRICES[sku]


@flow.step
def with_tax(amount: float) -> float:
    """A plain ``def`` step: runs on a blocking worker thread."""
    return round(amount * 1.2, 2)


@flow.workflow
async def quote(sku: str, qty: int) -> dict:
    """Each step call is durable: recorded, and not run again on a replay."""
    price = await fetch_price(sku)
    return {"sku": sku, "qty": qty, "total": await with_tax(price * qty)}


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    async with flow:  # starts this process's workers (none with BLAZING_LOCAL_WORKERS=0)
        yield  # on shutdown: running work gets drain_timeout to finish


api = FastAPI(lifespan=lifespan)


@api.post("/quotes/{sku}")
async def create_quote(sku: str, qty: int = 1) -> dict:
    """Run the workflow and answer with its result."""
    run = await flow.quote(sku, qty)
    try:
        return {"run_id": run.unit_id, "quote": await run.result()}
    except KeyError as exc:  # the step's own exception, re-raised here
        raise HTTPException(status_code=404, detail=str(exc)) from exc


@api.post("/quotes/{sku}/later", status_code=202)
async def submit_quote(sku: str, qty: int = 1) -> dict:
    """Submit and answer at once; poll GET /runs/{run_id}."""
    run = await flow.quote(sku, qty)
    return {"run_id": run.unit_id}


@api.get("/runs/{run_id}")
async def get_run(run_id: str) -> dict:
    """A run's status, and its result once it succeeded."""
    try:
        run = flow.get_run(run_id)
    except RunNotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    status = await run.status()
    body: dict = {"run_id": run_id, "status": status}
    if status == "succeeded":
        body["quote"] = await run.result()
    return body


@api.get("/health")
async def health() -> dict:
    return {"ok": True}
