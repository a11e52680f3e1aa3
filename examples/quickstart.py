"""The quick start: a two-step pipeline on the embedded store (no server needed).

Run it with `make run` (or `python examples/quickstart.py` once installed).
"""

import asyncio

from blazing import Blazing

app = Blazing()  # no arguments: everything runs in this process


@app.step
async def fetch_data(item_id: str, services=None) -> dict:
    """Pretend to fetch a record."""
    return {"id": item_id, "values": [1, 2, 3]}


@app.step
async def transform_data(data: dict, services=None) -> dict:
    """Reduce the record to its result."""
    return {"id": data["id"], "result": sum(data["values"])}


@app.workflow
async def pipeline(item_id: str, services=None) -> dict:
    """Fetch, then transform: each step call is recorded and its result memoized."""
    data = await fetch_data(item_id, services=services)
    return await transform_data(data, services=services)


async def main() -> None:
    async with app:
        result = await app.pipeline("123").wait_result()
        print("pipeline('123') ->", result)


if __name__ == "__main__":
    asyncio.run(main())
