"""The optimizer in embedded mode: ``worker_config`` moves async slots and blocking threads."""

import asyncio
import threading
import time

from blazing.settings import resolve

CONFIG = {"async_workers": 2, "blocking_workers": 2, "async_concurrency": 2,
          "optimization_interval": 0.2}


def register(app, n, burn):
    @app.step
    def crunch(x: int) -> int:
        end = time.perf_counter() + burn
        while time.perf_counter() < end:  # CPU-bound: holds a blocking thread
            pass
        return x * x

    @app.workflow
    async def burst() -> list[int]:
        return await asyncio.gather(*(crunch(i) for i in range(n)))


def blocking_threads():
    return sum(t.name.startswith("blazing-blocking-") for t in threading.enumerate())


def test_cpu_burst_moves_workers_to_blocking(make_app):
    app = make_app(worker_config={**CONFIG, "auto_optimize": True})
    register(app, 40, 0.05)
    assert app.run_sync("burst") == [i * i for i in range(40)]

    decisions = app.optimizer_decisions()
    assert decisions and decisions[0]["reason"] == "warmup"
    moves = [d for d in decisions if d["after"] != d["before"]]
    assert moves, [(d["reason"], d["detail"]) for d in decisions]
    first = moves[0]
    assert (first["action"], first["from"], first["to"]) == ("move", "async", "blocking")
    assert first["before"] == {"async": 2, "blocking": 2}
    assert first["after"] == {"async": 1, "blocking": 3}  # blocking at most min(2×2, 4-1)
    assert first["blocking"]["depth"] > 0
    assert first["blocking"]["urgency"] > first["async"]["urgency"]
    last = moves[-1]["after"]
    stats = app.lanes()
    assert stats["async"]["capacity"] == last["async"] * 2
    assert stats["blocking"]["capacity"] == last["blocking"]
    assert blocking_threads() >= last["blocking"]
    # Still correct afterwards, on the new mix.
    assert app.run_sync("burst") == [i * i for i in range(40)]


def test_auto_optimize_off_records_nothing_and_keeps_the_mix(make_app):
    app = make_app(worker_config={**CONFIG, "auto_optimize": False})
    register(app, 20, 0.05)
    assert app.run_sync("burst") == [i * i for i in range(20)]
    assert app.optimizer_decisions() == []
    stats = app.lanes()
    assert stats["async"]["capacity"] == 4
    assert stats["blocking"]["capacity"] == 2


def test_only_embedded_mode_asks_the_engine_to_optimize():
    embedded = resolve(worker_config=CONFIG).store_config()
    assert embedded["auto_optimize"] is True  # the default
    assert embedded["optimization_interval_ms"] == 200
    assert (embedded["async_workers"], embedded["blocking_workers"],
            embedded["async_concurrency"]) == (2, 2, 2)
    shared = resolve(redis_url="redis://localhost:6379/0", worker_config=CONFIG).store_config()
    assert "auto_optimize" not in shared  # the foreman does it
