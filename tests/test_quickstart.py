"""The quick-start pipeline on ``Blazing()``, by every documented way of running it."""

import asyncio
import subprocess
import sys
from pathlib import Path

from blazing import Blazing, RemoteRun

EXPECTED = {"id": "123", "result": 6}
ROOT = Path(__file__).resolve().parents[1]


def register_pipeline(app):
    """The quick start's two steps and workflow, as in examples/quickstart.py."""

    @app.step
    async def fetch_data(item_id: str, services=None) -> dict:
        return {"id": item_id, "values": [1, 2, 3]}

    @app.step
    async def transform_data(data: dict, services=None) -> dict:
        return {"id": data["id"], "result": sum(data["values"])}

    @app.workflow
    async def pipeline(item_id: str, services=None) -> dict:
        data = await fetch_data(item_id, services=services)
        return await transform_data(data, services=services)

    return pipeline


def test_no_argument_app_is_async_blazing(app):
    assert type(app) is Blazing
    assert app._runtime.started is False  # nothing runs until the first call


def test_wait_result_on_the_call(app):
    register_pipeline(app)

    async def main():
        return await app.pipeline("123").wait_result()

    assert asyncio.run(main()) == EXPECTED


def test_handle_without_await_then_await_then_result(app):
    register_pipeline(app)

    async def main():
        h = app.pipeline("123")
        assert isinstance(h, RemoteRun)
        same = await h
        assert same is h
        return await h.result()

    assert asyncio.run(main()) == EXPECTED


def test_run_by_name(app):
    register_pipeline(app)

    async def main():
        h = await app.run("pipeline", "123")
        assert isinstance(h, RemoteRun)
        return await h.result()

    assert asyncio.run(main()) == EXPECTED


def test_run_by_decorated_function(app):
    pipeline = register_pipeline(app)

    async def main():
        h = await app.run(pipeline, "123")
        return await h.wait_result()

    assert asyncio.run(main()) == EXPECTED


def test_run_sync_from_plain_sync_code(app):
    register_pipeline(app)
    assert app.run_sync("pipeline", "123") == EXPECTED
    assert app.run_sync("pipeline", item_id="456") == {"id": "456", "result": 6}


def test_async_with_app(app):
    register_pipeline(app)

    async def main():
        async with app:
            return await app.pipeline("123").wait_result()

    assert asyncio.run(main()) == EXPECTED


def test_examples_quickstart_script():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["pipeline('123') -> {'id': '123', 'result': 6}"]
