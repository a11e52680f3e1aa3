"""The peers benchmark's own parts: the table's arithmetic, and our adapter end to end.

The peers themselves are not installed here (they need their own virtualenvs and minutes
of running: `make bench-peers`); what is checked is what the published figures rest on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "benchmarks" / "peers"
sys.path.insert(0, str(PEERS))

import run  # noqa: E402  (benchmarks/peers/run.py)
from benchmarks import render  # noqa: E402


def _run(row: str, workload: str, repeat: int, **figures: Any) -> dict[str, Any]:
    return {"row": row, "workload": workload, "repeat": repeat, **figures}


def _report(runs: list[dict[str, Any]], workloads: list[str]) -> dict[str, Any]:
    rows = [run.Row("blazing"), run.Row("celery"), run.Row("celery", "durable")]
    return {
        "rows": [r.name for r in rows], "workloads": workloads, "repeats": 3, "quick": False,
        "sizes": run.SIZES, "skipped": [], "versions": {}, "runs": runs,
        "provenance": {"commit": "abc", "command": "python benchmarks/peers/run.py",
                       "machine": "2 × cpu", "when": "today"},
        "machine": {"cpu": "cpu", "cores": 2, "ram_gib": 1, "kernel": "k", "python": "3",
                    "redis_server": "7"},
        "medians": run.summarize(runs, rows, workloads),
    }


def test_medians_ratios_and_error_cells() -> None:
    runs = [
        _run("blazing", "drain", 1, per_s=30000.0), _run("blazing", "drain", 2, per_s=10.0),
        _run("blazing", "drain", 3, per_s=20000.0),
        _run("celery", "drain", 1, per_s=1000.0), _run("celery", "drain", 2, per_s=2000.0),
        _run("celery", "drain", 3, per_s=3000.0),
        _run("blazing", "latency", 1, p50_ms=1.0, p99_ms=2.0),
        _run("celery", "latency", 1, p50_ms=3.0, p99_ms=4.0),
        _run("celery/durable", "drain", 1, error="worker never started"),
        _run("celery/durable", "latency", 1, p50_ms=2.0, p99_ms=8.0, missing=0),
    ]
    report = _report(runs, ["drain", "latency"])
    med = report["medians"]
    assert med["blazing"]["drain_per_s"]["median"] == 20000.0  # median, not mean or best
    assert med["celery"]["drain_per_s"]["median"] == 2000.0
    assert med["celery/durable"]["drain_per_s"]["median"] is None
    md = render.peers(report)
    # Rates are ours/theirs, latency theirs/ours.
    assert "| vs celery | 10.0× | 3.00× | 2.00× |" in md
    assert "| vs celery/durable | — | 2.00× | 4.00× |" in md
    # A row whose every run failed shows an error with its reason, not a number.
    assert "| celery/durable | error[^1] |" in md
    assert "[^1]: celery/durable drain: worker never started" in md


def test_missing_results_are_footnoted() -> None:
    runs = [_run("blazing", "pipelines", i, per_s=3000.0, missing=m)
            for i, m in enumerate((0, 2, 0))]
    md = render.peers(_report(runs, ["pipelines"]))
    assert "3,000[^1]" in md
    assert "missing 2 in total" in md


@pytest.mark.parametrize("workload,n", [("enqueue", 300), ("drain", 300), ("latency", 40),
                                        ("pipelines", 60)])
def test_our_adapter_end_to_end(redis_server: Any, workload: str, n: int) -> None:
    """systems.blazing_bench with real worker processes, as run.py starts it."""
    redis_server.cli("FLUSHALL")
    out = subprocess.run(
        [sys.executable, "-m", "systems.blazing_bench", "--redis", redis_server.url,
         "--workload", workload, "--n", str(n)],
        cwd=PEERS, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["system"] == "blazing" and result["workload"] == workload
    if workload == "latency":
        assert 0 < result["p50_ms"] <= result["p99_ms"]
    else:
        assert result["per_s"] > 0
    assert result.get("missing", 0) == 0


@pytest.mark.timeout(300)
def test_our_adapter_loses_nothing_under_sigkill(redis_server: Any) -> None:
    """The loss workload behind the peers table's "lost" column, with our adapter as
    run.py starts it (fewer tasks): a worker SIGKILLed and restarted every second while
    20 ms tasks run; every task runs (a killed worker's task after its 30 s lease)."""
    redis_server.cli("FLUSHALL")
    out = subprocess.run(
        [sys.executable, "-m", "systems.blazing_bench", "--redis", redis_server.url,
         "--workload", "loss", "--n", "300"],
        cwd=PEERS, capture_output=True, text=True, timeout=280)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["workload"] == "loss"
    assert result["kills"] >= 2, result  # the kills landed while tasks were left to run
    assert result["lost"] == 0, (result, out.stderr[-2000:])
