"""What history costs inside Redis, counted in instructions rather than timed.

Wall-clock figures on a shared VM move by tens of percent between repeats; the number
of instructions redis-server executes for the same work does not. This runs one
``redis-server`` under valgrind's callgrind, and the Go benchmark
``BenchmarkSubmitReserveComplete`` (batches of 100 root steps through submit, reserve,
complete and the caller's pop) against it, with history on and off, at two sizes: the
difference between the sizes, divided by the steps it adds, is what one step costs
Redis, with set-up (script loading, namespaces) cancelled out. Writes
``benchmarks/results/history-instructions.json`` (with its provenance) and prints the
table the docs show (benchmarks/render.py).

    python benchmarks/history_instructions.py [--repeats 3] [--batches 20] [--smoke] [--json PATH]

Needs valgrind (``callgrind_control``) and redis-server. --smoke: one repeat of 2 and 4
batches, results to a temp file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import render, results_file  # noqa: E402
from tests.support.redis_server import free_port  # noqa: E402

BENCH = "BenchmarkSubmitReserveComplete"


def _recv(s: socket.socket) -> bytes:
    chunk = s.recv(65536)
    if not chunk:
        raise SystemExit("redis-server under callgrind closed the connection")
    return chunk


class CallgrindRedis:
    """A redis-server under callgrind whose instruction count can be zeroed and read."""

    def __init__(self, out_dir: Path) -> None:
        self.port = free_port()
        self.out_dir = out_dir
        self.proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/cg.out",
             "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--hz", "1", "--dir", str(out_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not self._pong():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("redis-server under callgrind did not start")
            time.sleep(0.1)  # valgrind starts slowly: poll for the server's answer

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def commands_processed(self) -> int:
        """Redis's count of commands served (INFO stats), to show the benchmark used it."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(b"INFO stats\r\n")
            buf = b""
            while b"\r\n" not in buf:
                buf += _recv(s)
            header, _, body = buf.partition(b"\r\n")  # a bulk string: $<size>\r\n<body>
            while len(body) < int(header[1:]):
                body += _recv(s)
        for line in body.decode().splitlines():
            if line.startswith("total_commands_processed:"):
                return int(line.split(":", 1)[1])
        raise SystemExit(f"no total_commands_processed in INFO stats: {body[:200]!r}")

    def _control(self, flag: str) -> None:
        subprocess.run(["callgrind_control", flag, str(self.proc.pid)], check=True,
                       capture_output=True, timeout=60)

    def zero(self) -> None:
        """Start counting from here."""
        self._control("-z")

    def read(self) -> int:
        """Instructions since the last zero (callgrind writes a dump; its summary)."""
        before = set(self.out_dir.glob("cg.out*"))
        self._control("-d")
        new = sorted(set(self.out_dir.glob("cg.out*")) - before,
                     key=lambda p: p.stat().st_mtime)
        for line in new[-1].read_text().splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
        raise SystemExit(f"no summary in {new[-1]}")

    def close(self) -> None:
        """SHUTDOWN, so valgrind ends cleanly."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                s.sendall(b"SHUTDOWN NOSAVE\r\n")
                s.recv(16)
        except OSError:
            pass
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def instructions(redis: CallgrindRedis, setting: str, batches: int) -> int:
    """Redis's instructions for one go-test run of ``batches`` batches."""
    served = redis.commands_processed()
    redis.zero()
    out = subprocess.run(
        ["go", "test", "-run", "^$", "-bench", f"^{BENCH}$/^history={setting}$",
         "-benchtime", f"{batches}x", "-count", "1", "./core/store/redisstore"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
        env={**os.environ, "BLAZING_TEST_REDIS_ADDR": f"127.0.0.1:{redis.port}"})
    n = redis.read()
    if out.returncode != 0 or f"history={setting}" not in out.stdout:
        raise SystemExit(f"go test failed:\n{out.stdout}\n{out.stderr}")
    if redis.commands_processed() - served < batches:
        # The count is only of this server: a benchmark that started its own counts nothing.
        raise SystemExit("the Go benchmark did not use the redis-server under callgrind "
                         "(core/store/storetest must honour BLAZING_TEST_REDIS_ADDR)")
    return n


def main() -> None:
    """Count Redis's instructions per step, history on and off; write the results file,
    print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", type=int, default=20, help="batches of 100 steps, smaller run")
    ap.add_argument("--smoke", action="store_true",
                    help="one repeat of 2 and 4 batches, results to a temp file: shows that "
                    "it runs")
    ap.add_argument("--json", type=Path, help="results file (default: benchmarks/results/"
                    "history-instructions.json, or a temp file with --smoke)")
    args = ap.parse_args()
    if args.smoke:
        args.repeats, args.batches = 1, 2
    if not shutil.which("callgrind_control") or not shutil.which("redis-server"):
        raise SystemExit("needs valgrind (callgrind_control) and redis-server on PATH")
    per_step: dict[str, list[float]] = {"on": [], "off": []}
    steps = args.batches * 100
    with tempfile.TemporaryDirectory() as tmp:
        redis = CallgrindRedis(Path(tmp))
        try:
            subprocess.run(["go", "test", "-c", "-o", os.devnull, "./core/store/redisstore"],
                           cwd=ROOT, check=True, timeout=600)  # compile once, outside the count
            for r in range(args.repeats):
                for setting in (("on", "off") if r % 2 == 0 else ("off", "on")):
                    small = instructions(redis, setting, args.batches)
                    large = instructions(redis, setting, 2 * args.batches)
                    per_step[setting].append((large - small) / steps)
                    print(f"repeat {r + 1}/{args.repeats}, history {setting}: "
                          f"{per_step[setting][-1]:,.0f} instructions per step",
                          file=sys.stderr, flush=True)
        finally:
            redis.close()
    on, off = statistics.median(per_step["on"]), statistics.median(per_step["off"])
    res = {"instructions_per_step": per_step, "median": {"on": on, "off": off, "ratio": on / off},
           "repeats": args.repeats, "batches": [args.batches, 2 * args.batches], "batch": 100}
    path = results_file.destination("history-instructions.json", args.smoke, args.json)
    results_file.write(path, res, args.smoke)
    print(render.history_instructions(res))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
