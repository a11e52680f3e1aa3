"""Where a benchmark's figures came from: the commit, the command, the machine, the time.

Every results file under ``benchmarks/results/`` carries this, and every table rendered
from one (``benchmarks/tables.py``) names it, so a figure can be traced to the run that
measured it.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages (empty where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# The load when the benchmark started (this module is imported before anything is
# measured): what other work the machine had, before the run added its own.
LOAD_BEFORE = load_average()


def provenance() -> dict[str, Any]:
    """The commit (and whether the tree had uncommitted changes), the command line,
    the machine, the time of this run, and the machine's load averages before it started
    and at its end (the machine may be shared: a load before the run says other work was
    running while it measured)."""
    script = Path(sys.argv[0])
    try:
        script = script.resolve().relative_to(ROOT)
    except ValueError:
        pass
    return {
        "commit": _git("rev-parse", "--short=12", "HEAD") or "unknown",
        # Results files are what runs write: changed ones do not make the code dirty.
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no", "--", ".",
                           ":(exclude)benchmarks/results")),
        "command": shlex.join(["python", str(script), *sys.argv[1:]]),
        "machine": f"{os.cpu_count()} × {_cpu_model()}, Python {platform.python_version()}",
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_before": LOAD_BEFORE,
        "load": load_average(),
    }
