"""Where a benchmark writes its results, and how.

A full run writes ``benchmarks/results/<name>``, the file its docs table is rendered
from. A smoke run (``--smoke``: tiny sizes, one repeat) writes under a temp directory
instead (``$BLAZING_BENCH_SMOKE_DIR`` when set), never over the committed file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.provenance import provenance

RESULTS = Path(__file__).resolve().parent / "results"


def destination(name: str, smoke: bool, override: Path | None = None) -> Path:
    """The results file of a run: `override` if given, else the committed file, or for a
    smoke run a file in the smoke directory."""
    if override is not None:
        return override
    if smoke:
        base = os.environ.get("BLAZING_BENCH_SMOKE_DIR") or os.path.join(
            tempfile.gettempdir(), f"blazing-bench-smoke-{os.getuid()}")
        return Path(base) / name
    return RESULTS / name


def write(path: Path, results: dict[str, Any], smoke: bool) -> dict[str, Any]:
    """Add the provenance (and the smoke flag) to `results`, write them as JSON to
    `path`, and return them."""
    results["provenance"] = provenance()
    if smoke:
        results["smoke"] = True
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return results
