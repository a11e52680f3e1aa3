"""Blazing Flow side by side with peer task queues on one redis-server (`make bench-peers`).

    .venv/bin/python benchmarks/peers/run.py [--systems blazing,celery,...]
        [--workloads enqueue,drain,...] [--repeats 3] [--quick | --smoke] [--timeout 900]
        [--out-dir benchmarks/results]

1. Makes one virtualenv per peer, benchmarks/peers/.venvs/<section>, from the sections of
   requirements.txt (in parallel), when missing or when its section changed: each venv
   keeps a stamp with its section's hash. A venv without a stamp whose installed versions
   already match the pins just gets the stamp.
2. Starts one redis-server (no persistence) and runs every row x workload x repeat as
   `<venv python> -m systems.<system>_bench --redis URL --workload W --n N [--variant V]`
   (cwd benchmarks/peers), with FLUSHALL before each run and a time limit per run. A run
   that fails or times out becomes an error cell, not an abort. Repeat k of every row runs
   before repeat k+1 of any (rows rotated each repeat), so machine noise spreads evenly.
3. Writes benchmarks/results/peers-latest.json (every run, the medians, the machine, the
   versions, the provenance) and prints the table the docs show (benchmarks/render.py);
   `python benchmarks/tables.py --write` puts it into benchmarks/README.md and
   benchmarks/peers/README.md.

--smoke runs only what is installed (our row, and each peer whose virtualenv is already
made: nothing is installed), drain and latency at tiny N, once, and writes to a temp
directory: it shows that the harness runs.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PEERS = Path(__file__).resolve().parent
ROOT = PEERS.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(PEERS))

from benchmarks import render, results_file  # noqa: E402
from benchmarks.render import PEER_FIGURES as FIGURES  # noqa: E402
from benchmarks.render import peer_cell_key as cell_key  # noqa: E402
from common import WORKLOADS, RespClient  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

VENVS = PEERS / ".venvs"
REQUIREMENTS = PEERS / "requirements.txt"
# Our row runs with the project's .venv (make setup), or else with this interpreter.
OUR_PYTHON = next((p for p in [ROOT / ".venv" / "bin" / "python"] if p.exists()),
                  Path(sys.executable))
STAMP = ".requirements.sha256"
LOGS = PEERS / ".logs"

SIZES = {"enqueue": 20000, "drain": 20000, "latency": 500, "pipelines": 2000, "loss": 2000}
QUICK_SIZES = {"enqueue": 2000, "drain": 2000, "latency": 100, "pipelines": 200, "loss": 300}
# A smoke run does two workloads (each adapter run starts its workers: seconds). Loss is
# left out: a killed worker's task waits for its lease (30 s for us) or longer;
# tests/test_peers_harness.py runs our adapter's loss workload.
SMOKE_SIZES = {"drain": 200, "latency": 20}
# Extra figures an adapter may report that mean the run was not clean.
WARN_FIGURES = ("missing",)


@dataclass(frozen=True)
class Row:
    """One line of the table: a system, optionally in a second configuration."""

    system: str
    variant: str = "default"

    @property
    def name(self) -> str:
        return self.system if self.variant == "default" else f"{self.system}/{self.variant}"

    @property
    def python(self) -> Path:
        return OUR_PYTHON if self.system == "blazing" else VENVS / self.system / "bin" / "python"

    @property
    def adapter(self) -> Path:
        return PEERS / "systems" / f"{self.system}_bench.py"


ROWS = [Row("blazing"), Row("celery"), Row("celery", "durable"), Row("rq"), Row("arq"),
        Row("dramatiq"), Row("taskiq"), Row("taskiq", "durable")]


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- virtualenvs -------------------------------------------------------------------------


def requirement_sections(path: Path = REQUIREMENTS) -> dict[str, list[str]]:
    """requirements.txt's `# [name]` sections: name -> requirement lines."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        m = re.fullmatch(r"#\s*\[([\w.-]+)\]", line)
        if m:
            current = sections.setdefault(m.group(1), [])
        elif line and not line.startswith("#") and current is not None:
            current.append(line)
    return sections


def section_hash(lines: list[str]) -> str:
    """What a venv's stamp holds: the hash of its section (and of the interpreter used)."""
    text = "\n".join([platform.python_version(), *lines])
    return hashlib.sha256(text.encode()).hexdigest()


def pin_name(line: str) -> tuple[str, str | None]:
    """`celery[redis]==5.7.0` -> ("celery", "5.7.0"); the version is None when not pinned."""
    m = re.match(r"([A-Za-z0-9._-]+)(?:\[[^\]]*\])?\s*(?:==\s*([^\s;#]+))?", line)
    if not m:
        return line, None
    return m.group(1), m.group(2)


def installed_versions(python: Path, names: list[str]) -> dict[str, str | None]:
    """Versions of `names` installed for `python` (None when absent), via importlib.metadata."""
    code = ("import importlib.metadata as m, json, sys\n"
            "out = {}\n"
            "for n in sys.argv[1:]:\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: out[n] = None\n"
            "print(json.dumps(out))")
    try:
        out = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True,
                             timeout=60, check=True)
        return json.loads(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return {n: None for n in names}


def pins_satisfied(python: Path, lines: list[str]) -> bool:
    """Whether every pinned requirement is installed at its pinned version."""
    pins = [pin_name(line) for line in lines]
    have = installed_versions(python, [n for n, _ in pins])
    return all(v is None or have.get(n) == v for n, v in pins)


def venv_ready(name: str, lines: list[str]) -> bool:
    """Whether .venvs/<name> is made and matches its section (nothing is installed)."""
    venv = VENVS / name
    stamp = venv / STAMP
    return ((venv / "bin" / "python").exists() and stamp.exists()
            and stamp.read_text().strip() == section_hash(lines))


def ensure_venv(name: str, lines: list[str]) -> str | None:
    """Make .venvs/<name> match its section; returns an error text, or None when ready."""
    venv = VENVS / name
    python = venv / "bin" / "python"
    stamp = venv / STAMP
    want = section_hash(lines)
    if stamp.exists() and stamp.read_text().strip() == want and python.exists():
        return None
    if python.exists() and not stamp.exists() and pins_satisfied(python, lines):
        stamp.write_text(want + "\n")  # made before stamps existed, and it matches
        return None
    progress(f"venv {name}: installing {', '.join(lines)}")
    t0 = time.monotonic()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix=f"req-{name}-",
                                     delete=False) as f:
        f.write("\n".join(lines) + "\n")
        req = f.name
    try:
        # The base interpreter, not this venv's: a peer's venv must not see our packages.
        base = getattr(sys, "_base_executable", sys.executable)
        for argv in ([base, "-m", "venv", "--clear", str(venv)],
                     [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                      "-r", req]):
            r = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
            if r.returncode != 0:
                return f"{' '.join(argv[:4])} failed: {(r.stderr or r.stdout)[-2000:]}"
    except (OSError, subprocess.SubprocessError) as e:
        return f"installing {name} failed: {e}"
    finally:
        os.unlink(req)
    stamp.write_text(want + "\n")
    progress(f"venv {name}: ready in {time.monotonic() - t0:.0f} s")
    return None


def ensure_venvs(names: list[str]) -> dict[str, str]:
    """Make the peers' venvs (in parallel); returns section -> error for those that failed."""
    sections = requirement_sections()
    errors: dict[str, str] = {}
    todo = {n: sections[n] for n in names if n in sections}
    for n in names:
        if n not in sections:
            errors[n] = f"no [{n}] section in {REQUIREMENTS.name}"
    VENVS.mkdir(parents=True, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(max(1, len(todo))) as pool:
        futures = {pool.submit(ensure_venv, n, lines): n for n, lines in todo.items()}
        for fut in concurrent.futures.as_completed(futures):
            err = fut.result()
            if err:
                errors[futures[fut]] = err
                progress(f"venv {futures[fut]}: {err}")
    return errors


# --- runs --------------------------------------------------------------------------------


def processes_with_token(token: str) -> list[int]:
    """Pids whose environment carries RUN_TOKEN=token: what one adapter run started."""
    needle = f"PEERS_RUN_TOKEN={token}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
        except OSError:
            continue  # gone, or not ours to read
    return pids


def reap_leftovers(token: str) -> int:
    """SIGKILL every process a finished adapter run left behind (found by its token)."""
    pids = processes_with_token(token)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


def interrupt(proc: subprocess.Popen[bytes]) -> bytes:
    """Stop an adapter run: SIGINT first (its `finally` stops its workers), SIGKILL after
    30 s. Returns what it printed."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    except ProcessLookupError:
        out, _ = proc.communicate()
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    return out or b""


def run_one(row: Row, workload: str, n: int, redis_url: str, timeout: float,
            repeat: int) -> dict[str, Any]:
    """One adapter run: its parsed JSON line, or {"error": ...}. Never raises."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{row.name.replace('/', '-')}-{workload}-{repeat}.log"
    token = uuid.uuid4().hex
    argv = [str(row.python), "-m", f"systems.{row.system}_bench", "--redis", redis_url,
            "--workload", workload, "--n", str(n)]
    if row.variant != "default":
        argv += ["--variant", row.variant]
    # The token lets us find every process the run started (workers inherit it).
    env = {**os.environ, "PEERS_RUN_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)
    if row.system == "blazing":
        env["PYTHONPATH"] = str(ROOT / "python")  # this tree's package, whatever is installed
    t0 = time.monotonic()
    result: dict[str, Any]
    with open(log, "wb") as err:
        proc = subprocess.Popen(argv, cwd=PEERS, env=env, stdout=subprocess.PIPE, stderr=err,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            out, rc = interrupt(proc), None
        except BaseException:
            # e.g. Ctrl-C: the adapter is in its own session and did not get it.
            interrupt(proc)
            reap_leftovers(token)
            raise
    seconds = time.monotonic() - t0
    left = reap_leftovers(token)
    lines = out.decode("utf-8", "replace").strip().splitlines()
    tail = log.read_text("utf-8", "replace")[-1500:]
    if rc is None:
        result = {"error": f"timed out after {timeout:.0f} s", "stderr_tail": tail}
    elif rc != 0:
        result = {"error": f"exit code {rc}", "stderr_tail": tail}
    else:
        try:
            result = json.loads(lines[-1])
        except (IndexError, ValueError):
            result = {"error": "no JSON result line", "stdout_tail": "\n".join(lines[-5:]),
                      "stderr_tail": tail}
    if left:
        result["leftover_processes_killed"] = left
    result.update(row=row.name, workload=workload, n=n, repeat=repeat,
                  seconds=round(seconds, 2), log=str(log.relative_to(ROOT)))
    return result


def flushall(url: str) -> None:
    c = RespClient(url)
    try:
        c.call("FLUSHALL")
    finally:
        c.close()


def summarize(runs: list[dict[str, Any]], rows: list[Row],
              workloads: list[str]) -> dict[str, dict[str, Any]]:
    """row -> figure -> {"median", "ok", "runs", "errors", "warn"} (median None if no run ok)."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        cells: dict[str, Any] = {}
        for workload, key, _label, _ in FIGURES:
            if workload not in workloads:
                continue
            mine = [r for r in runs if r["row"] == row.name and r["workload"] == workload]
            ok = [r for r in mine if "error" not in r and key in r]
            errors = sorted({r["error"] for r in mine if "error" in r})
            warn = {w: sum(r.get(w, 0) for r in ok) for w in WARN_FIGURES
                    if any(r.get(w) for r in ok)}
            cells[cell_key(workload, key)] = {
                "median": statistics.median(r[key] for r in ok) if ok else None,
                "ok": len(ok), "runs": len(mine), "errors": errors, "warn": warn,
            }
        out[row.name] = cells
    return out


# --- machine and versions ----------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    redis_version = "unknown"
    exe = shutil.which("redis-server")
    if exe:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
        m = re.search(r"v=(\S+)", out.stdout)
        redis_version = m.group(1) if m else out.stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": ram_gib,
            "kernel": platform.release(), "os": platform.platform(),
            "python": platform.python_version(), "redis_server": redis_version}


def versions(systems: list[str]) -> dict[str, dict[str, str | None]]:
    """system -> {package: installed version} for the pinned packages of each venv used."""
    sections = requirement_sections()
    out: dict[str, dict[str, str | None]] = {}
    for system in systems:
        if system == "blazing":
            v = installed_versions(OUR_PYTHON, ["blazing-flow", "blazing"])
            commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                    capture_output=True, text=True, timeout=30).stdout.strip()
            out[system] = {"blazing": v.get("blazing-flow") or v.get("blazing"),
                           "git": commit or None}
        elif system in sections:
            names = [pin_name(line)[0] for line in sections[system]]
            out[system] = installed_versions(VENVS / system / "bin" / "python", names)
    return out


# --- main --------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--systems", default=",".join(r.name for r in ROWS),
                   help="comma-separated rows, e.g. blazing,celery,celery/durable; a bare "
                        "system name also selects its variants")
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--repeats", type=int, default=3)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small N")
    size.add_argument("--smoke", action="store_true",
                      help="what is installed, drain and latency at tiny N, once, results to "
                           "a temp directory: shows that the harness runs")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per adapter run")
    p.add_argument("--out-dir", type=Path, help="where peers-latest.json goes (default: "
                   "benchmarks/results, or a temp directory with --smoke)")
    return p.parse_args()


def select_rows(spec: str) -> list[Row]:
    wanted = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [w for w in wanted if not any(w in (r.name, r.system) for r in ROWS)]
    if unknown:
        raise SystemExit(f"unknown systems: {', '.join(unknown)} "
                         f"(known: {', '.join(r.name for r in ROWS)})")
    return [r for r in ROWS if r.name in wanted or r.system in wanted]


def main() -> int:
    args = parse_args()
    rows = select_rows(args.systems)
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    bad = [w for w in workloads if w not in WORKLOADS]
    if bad:
        raise SystemExit(f"unknown workloads: {', '.join(bad)} (known: {', '.join(WORKLOADS)})")
    if args.smoke:
        workloads = [w for w in workloads if w in SMOKE_SIZES]
        args.repeats = 1
    sizes = {w: (SMOKE_SIZES if args.smoke else QUICK_SIZES if args.quick else SIZES)[w]
             for w in workloads}

    skipped: list[str] = []
    runnable: list[Row] = []
    for row in rows:
        if not row.adapter.exists():
            skipped.append(f"{row.name}: {row.adapter.relative_to(ROOT)} not written yet")
        elif row.system == "blazing" and not OUR_PYTHON.exists():
            skipped.append(f"{row.name}: {OUR_PYTHON.relative_to(ROOT)} missing (run make setup)")
        else:
            runnable.append(row)
    for note in skipped:
        progress(f"skipping {note}")
    peers = sorted({r.system for r in runnable if r.system != "blazing"})
    if args.smoke:  # nothing is installed by a smoke run
        sections = requirement_sections()
        venv_errors = {p: "not installed (make bench-peers makes its virtualenv)"
                       for p in peers if not venv_ready(p, sections.get(p, []))}
    else:
        venv_errors = ensure_venvs(peers)
    for row in list(runnable):
        if row.system in venv_errors:
            runnable.remove(row)
            skipped.append(f"{row.name}: virtualenv not ready ({venv_errors[row.system][:200]})")

    runs: list[dict[str, Any]] = []
    total = args.repeats * len(workloads) * len(runnable)
    redis = RedisServer()
    try:
        redis.start()
        progress(f"redis-server at {redis.url}; {total} runs")
        done = 0
        for rep in range(args.repeats):
            # Rotate the order each repeat, so no row always runs right after the same one.
            order = runnable[rep % len(runnable):] + runnable[:rep % len(runnable)] \
                if runnable else []
            for workload in workloads:
                for row in order:
                    flushall(redis.url)
                    r = run_one(row, workload, sizes[workload], redis.url, args.timeout, rep + 1)
                    runs.append(r)
                    done += 1
                    shown = r.get("error") or {k: (round(v, 2) if isinstance(v, float) else v)
                                               for k, v in r.items()
                                               if k not in ("system", "variant", "workload",
                                                            "row", "n", "repeat", "log")}
                    progress(f"[{done}/{total}] {row.name} {workload} #{rep + 1}: {shown}")
    finally:
        redis.close()

    report: dict[str, Any] = {
        "quick": args.quick, "smoke": args.smoke, "repeats": args.repeats, "sizes": sizes,
        "workloads": workloads, "timeout_s": args.timeout, "rows": [r.name for r in runnable],
        "skipped": skipped, "machine": machine(),
        "versions": versions(sorted({r.system for r in runnable},
                                    key=lambda s: [r.system for r in ROWS].index(s))),
        "medians": summarize(runs, runnable, workloads), "runs": runs,
    }
    out = results_file.destination("peers-latest.json", args.smoke,
                                   args.out_dir / "peers-latest.json" if args.out_dir else None)
    results_file.write(out, report, args.smoke)
    print(render.peers(report))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
