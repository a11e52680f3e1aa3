"""``blazing worker``, ``blazing foreman`` and ``blazing --version``: the console script's
process commands, run as real processes against a real redis-server and stopped with
real signals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import blazing
from blazing._native import version as core_version
from tests.apps.durable import make_app
from tests.support.process import LoggedProcess
from tests.support.redis_server import free_port
from tests.support.workers import ROOT

pytestmark = pytest.mark.timeout(180)
SECRET = "cli-processes-secret"
APP = "tests.apps.durable:app"


class Command(LoggedProcess):
    """One ``python -m blazing.cli ...`` process; its stdout and stderr, merged, can be
    waited on line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__(
            [sys.executable, "-m", "blazing.cli", *args],
            {**os.environ, "PYTHONPATH": f"{ROOT / 'python'}{os.pathsep}{ROOT}",
             "BLAZING_SECRET": SECRET, **(env or {})}, merged=True)

    def expect(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Wait for an output line matching ``pattern`` (bounded)."""
        return super().expect(pattern, timeout)

    def signal_and_wait(self, signum: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send ``signum``; return the exit code once it has exited (bounded)."""
        self.proc.send_signal(signum)
        return self.proc.wait(timeout)

    def close(self) -> None:
        """Kill it if it still runs (after a failed test)."""
        self.kill()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run one command to its end (bounded)."""
    return subprocess.run(
        [sys.executable, "-m", "blazing.cli", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=60, env={**os.environ, "PYTHONPATH": f"{ROOT / 'python'}{os.pathsep}{ROOT}",
                         **(env or {})})


def parent_of(pid: int) -> int:
    """The parent pid of a live process."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(") ", 1)[1].split()[1])


def gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(") ", 1)[1][0] == "Z"


@pytest.fixture
def ns() -> str:
    return "cli" + uuid.uuid4().hex[:8]


@pytest.fixture
def client(redis_server, ns):
    app = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                   secret=SECRET)
    yield app
    app.stop_sync()


def test_version_names_the_package_and_the_go_core():
    out = run_cli("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (f"blazing {blazing.__version__} ({core_version()}; "
                                  f"Python {sys.version.split()[0]})")
    assert core_version().startswith("blazing-core ")


def test_bad_worker_input_is_refused_with_a_clear_message(redis_server, ns):
    store = ["--redis-url", redis_server.url, "--namespace", ns]
    for args, message in (
            (["--app", "nocolon"], "--app 'nocolon' must look like module:attribute"),
            (["--app", APP, "--concurrency", "0"], "--concurrency must be at least 1"),
            (["--app", APP, "--drain-timeout", "-1"], "--drain-timeout must not be negative"),
            (["--app", APP, "--type", "fast"], "invalid choice: 'fast'")):
        out = run_cli("worker", *store, *args)
        assert out.returncode == 2, (args, out.stderr)
        assert message in out.stderr, (args, out.stderr)
        # Said once, by the command, not once per lane's process.
        assert out.stderr.count(message) == 1, out.stderr
    # No store anywhere: the worker says where to give one.
    out = run_cli("worker", "--app", APP, "--type", "async", env={"BLAZING_REDIS_URL": ""})
    assert out.returncode == 2
    assert "needs a Redis store" in out.stderr and "BLAZING_REDIS_URL" in out.stderr


def test_worker_both_runs_one_process_per_lane_and_drains_on_sigterm(redis_server, ns,
                                                                      client):
    cmd = Command("worker", "--app", APP, "--redis-url", redis_server.url, "--namespace", ns,
                  "--drain-timeout", "10")
    try:
        lanes = {}
        for _ in range(2):
            m = cmd.expect(r"blazing\.worker ready pid=(\d+) type=(\w+)")
            lanes[m[2]] = int(m[1])
        assert sorted(lanes) == ["async", "blocking"]
        assert all(parent_of(pid) == cmd.proc.pid for pid in lanes.values())
        # five_steps is a workflow (async lane) awaiting five sync steps (blocking lane).
        assert client.five_steps(0).result_sync(timeout=60) == 15
        assert cmd.signal_and_wait(signal.SIGTERM) == 0, "".join(cmd.log)
        assert all(gone(pid) for pid in lanes.values()), "no worker outlives the command"
        assert sum("worker: stopped" in line for line in cmd.log) == 2, "".join(cmd.log)
    finally:
        cmd.close()


def test_worker_both_drains_the_other_lane_when_one_dies(redis_server, ns, client):
    cmd = Command("worker", "--app", APP, "--redis-url", redis_server.url, "--namespace", ns)
    try:
        lanes = {}
        for _ in range(2):
            m = cmd.expect(r"blazing\.worker ready pid=(\d+) type=(\w+)")
            lanes[m[2]] = int(m[1])
        os.kill(lanes["blocking"], signal.SIGKILL)
        # The pair ends, with the dead one's code, so whatever runs it restarts the pair.
        assert cmd.proc.wait(60) == 128 + signal.SIGKILL, "".join(cmd.log)
        assert gone(lanes["async"])
        log = "".join(cmd.log)
        assert f"pid {lanes['blocking']} exited on its own with code -9" in log
        assert "worker: stopped" in log  # the async one drained rather than being killed
    finally:
        cmd.close()


def test_worker_of_one_lane_runs_in_the_command_s_own_process(redis_server, ns, client):
    env = {"BLAZING_REDIS_URL": redis_server.url, "BLAZING_NAMESPACE": ns}
    cmds = [Command("worker", "--app", APP, "--type", lane, "--concurrency", "2", env=env)
            for lane in ("async", "blocking")]
    try:
        for cmd, lane in zip(cmds, ("async", "blocking"), strict=True):
            m = cmd.expect(r"blazing\.worker ready pid=(\d+) type=(\w+)")
            assert (int(m[1]), m[2]) == (cmd.proc.pid, lane), "no child: the worker is here"
            # Logged before the ready line, so it is already in the log.
            assert f"serving {APP} ({lane}, 2 at once)" in "".join(cmd.log), cmd.log
        assert client.five_steps(1).result_sync(timeout=60) == 16
        for cmd in cmds:
            assert cmd.signal_and_wait(signal.SIGINT) == 0, "".join(cmd.log)
    finally:
        for cmd in cmds:
            cmd.close()


def test_foreman_passes_its_flags_through(redis_server, ns, client):
    helped = run_cli("foreman", "--help")
    assert helped.returncode == 0
    assert "--redis-url" in helped.stderr and "--async-workers" in helped.stderr
    bogus = run_cli("foreman", "--bogus")
    assert bogus.returncode == 2 and "not defined: -bogus" in bogus.stderr

    # The store from the console script's own options, the rest the foreman's flags.
    port = free_port()
    fm = Command("--redis-url", redis_server.url, "--namespace", ns, "foreman",
                 "--app", APP, "--metrics-addr", f"127.0.0.1:{port}", "--drain-timeout", "5",
                 "--no-auto-optimize")
    try:
        pids = {int(fm.expect(r"started worker.*lane=async pid=(\d+)")[1]),
                int(fm.expect(r"started worker.*lane=blocking pid=(\d+)")[1])}
        # The command became the foreman (exec): signals reach it with no Python between.
        assert Path(f"/proc/{fm.proc.pid}/exe").resolve().name == "blazing-foreman"
        assert all(parent_of(pid) == fm.proc.pid for pid in pids)
        assert client.five_steps(2).result_sync(timeout=60) == 17
        assert fm.signal_and_wait(signal.SIGTERM) == 0, "".join(fm.log)
        assert all(gone(pid) for pid in pids)
    finally:
        fm.close()
