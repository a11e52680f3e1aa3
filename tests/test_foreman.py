"""The foreman daemon with real worker processes on a real redis-server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

from tests.apps.durable import DurableError, make_app
from tests.support.foreman import OPTIMIZING, cpu_then_io_bursts
from tests.support.foreman import Foreman as SupportForeman
from tests.support.redis_server import free_port
from tests.support.workers import ROOT

pytestmark = pytest.mark.timeout(120)
SECRET = "foreman-secret"


class Foreman(SupportForeman):
    """A foreman process whose log lines can be awaited; killed at the end of a test."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__(*args, secret=SECRET, env=env)

    def close(self) -> None:
        self.kill()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"


def metrics(port: int) -> dict[str, float]:
    """Scrape /metrics and parse the blazing_ samples (name{labels} -> value)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)", line)
        assert m, f"unparsable metrics line {line!r}"
        if m[1].startswith("blazing_"):
            out[m[1]] = float(m[2])
    return out


def test_help_and_bad_flags():
    out = subprocess.run([sys.executable, "-m", "blazing.foreman", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    for flag in ("--redis-url", "--app", "--async-workers", "--blocking-workers", "--min-async",
                 "--max-blocking", "--auto-optimize", "--no-auto-optimize",
                 "--optimization-interval", "--metrics-addr", "--drain-timeout"):
        assert flag in out.stderr
    assert "BLAZING_FOREMAN_ASYNC_WORKERS" in out.stderr
    too_many = 4 * (os.cpu_count() or 1) + 1  # past the four-per-CPU bound anywhere
    for args, msg in ((["--bogus"], "not defined: -bogus"),
                      (["--redis-url", "redis://x", "--app", "a:b", "--async-workers", "x"],
                       "non-negative integer"),
                      (["--app", "a:b"], "--redis-url"),
                      (["--redis-url", "redis://x", "--app", "nocolon"], "module:attribute"),
                      (["--redis-url", "redis://x", "--app", "a:b",
                        "--async-workers", str(too_many), "--max-async", str(too_many)],
                       "more than this machine can run")):
        out = subprocess.run([sys.executable, "-m", "blazing.foreman", *args], cwd=ROOT,
                             capture_output=True, text=True, timeout=30,
                             env={**os.environ, "BLAZING_REDIS_URL": ""})
        assert out.returncode == 2, (args, out.stderr)
        assert msg in out.stderr


def test_supervises_restarts_and_drains(redis_server):
    ns = "fm" + uuid.uuid4().hex[:8]
    port = free_port()
    fm = Foreman("--redis-url", redis_server.url, "--namespace", ns,
                 "--app", "tests.apps.durable:app", "--metrics-addr", f"127.0.0.1:{port}",
                 "--heartbeat-timeout", "5", "--drain-timeout", "5")
    client = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                      secret=SECRET)
    try:
        pids = {int(fm.expect(r"started worker.*lane=async pid=(\d+)")[1]),
                int(fm.expect(r"started worker.*lane=blocking pid=(\d+)")[1])}
        assert client.five_steps(0).result_sync(timeout=60) == 15

        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        fm.expect(r"worker exited")
        pids.add(int(fm.expect(r"started worker.* pid=(\d+)")[1]))
        assert client.five_steps(1).result_sync(timeout=60) == 16

        m = metrics(port)
        assert m["blazing_worker_restarts_total"] >= 1
        assert 'blazing_queue_depth{lane="async"}' in m
        assert 'blazing_queue_oldest_age_seconds{lane="blocking"}' in m
        assert any(k.startswith("blazing_workers{") for k in m)
        assert "blazing_operation_duration_seconds_count" in m
        workers = redis_server.cli("hgetall", f"{{{ns}}}:workers:" + redis_server.cli(
            "zrange", f"{{{ns}}}:foremen", "0", "0"))
        assert "async" in workers and "blocking" in workers

        fm.proc.send_signal(signal.SIGTERM)
        assert fm.proc.wait(30) == 0
        assert not [p for p in pids if alive(p)], "no worker outlives the foreman"
    finally:
        client.stop_sync()
        fm.close()


def test_metrics_count_a_known_load(redis_server):
    """/metrics against what was run: 8 five-step workflows, 3 runs that fail, 2 that
    retry once; totals and per-step series carry exactly those counts."""
    ns = "fm" + uuid.uuid4().hex[:8]
    port = free_port()
    fm = Foreman("--redis-url", redis_server.url, "--namespace", ns,
                 "--app", "tests.apps.durable:app", "--metrics-addr", f"127.0.0.1:{port}",
                 "--async-workers", "1", "--blocking-workers", "1", "--no-auto-optimize")
    client = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                      secret=SECRET)
    try:
        fm.expect(r"started worker.*lane=blocking")
        assert [client.five_steps(i).result_sync(timeout=60) for i in range(8)] == \
            [i + 15 for i in range(8)]
        for msg in ("a", "b", "c"):
            with pytest.raises(DurableError):
                client.fail_importable(msg).result_sync(timeout=30)
        assert [client.flaky_once(i).result_sync(timeout=30) for i in (1, 2)] == [2, 4]

        def step(name: str, outcome: str) -> float:
            return m.get(f'blazing_step_operations_total{{name="{name}",outcome="{outcome}"}}', 0)

        # Workers report on their beats (every 2 s at most): read until the last
        # attempt has been reported, within a bound.
        deadline = time.monotonic() + 30
        while True:
            m = metrics(port)
            if step("add", "succeeded") == 40 and step("flaky_once", "succeeded") == 2 \
                    and step("fail_importable", "failed") == 3 \
                    and step("five_steps", "succeeded") == 8:
                break
            assert time.monotonic() < deadline, m
            time.sleep(0.1)  # the next scrape; the beats are the foreman's, not ours
        assert step("flaky_once", "retried") == 2 and step("add", "failed") == 0
        assert m["blazing_operations_succeeded_total"] == 40 + 8 + 2
        assert m["blazing_operations_failed_total"] == 3
        assert m["blazing_operations_retried_total"] == 2
        assert m["blazing_operations_started_total"] == 40 + 8 + 3 + 2 * 2
        assert m["blazing_operation_duration_seconds_count"] == 40 + 8 + 3 + 2 * 2
        assert m['blazing_step_duration_seconds_count{name="add"}'] == 40
        assert m['blazing_step_duration_seconds_count{name="flaky_once"}'] == 4
        assert m['blazing_step_duration_seconds_bucket{name="add",le="+Inf"}'] == 40
        # Label values are the app's names only.
        names = {re.search(r'name="([^"]+)"', k)[1] for k in m if k.startswith("blazing_step_")}
        assert names == {"add", "five_steps", "fail_importable", "flaky_once"}
        assert m['blazing_workers{lane="async",state="serving"}'] == 1
        assert m['blazing_workers{lane="blocking",state="serving"}'] == 1
        assert m['blazing_queue_depth{lane="async"}'] == 0
    finally:
        client.stop_sync()
        fm.close()


def test_killed_worker_s_step_is_taken_back_at_once(redis_server):
    """The foreman takes back what a SIGKILLed worker held the moment it exits:
    with a 60 s lease, the step runs again on the replacement within seconds."""
    from tests.support.coordinator import Coordinator

    ns = "fm" + uuid.uuid4().hex[:8]
    coord = Coordinator()
    fm = Foreman("--redis-url", redis_server.url, "--namespace", ns,
                 "--app", "tests.apps.durable:app", "--no-auto-optimize",
                 env={"BLAZING_LEASE_SECONDS": "60", "BLAZING_HEARTBEAT_SECONDS": "5",
                      "BLAZING_TEST_COORD": coord.path, "BLAZING_TEST_GATE": "add:2"})
    client = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                      secret=SECRET)
    try:
        fm.expect(r"started worker.*lane=async")
        blocking = int(fm.expect(r"started worker.*lane=blocking pid=(\d+)")[1])
        handle = client.five_steps(0)
        first = coord.arrival()
        assert first.pid == blocking
        killed_at = time.monotonic()
        os.kill(blocking, signal.SIGKILL)
        line = fm.expect(r"took back add .*from gone worker").string
        assert handle.unit_id in line
        second = coord.arrival(timeout=45)
        assert second.pid != blocking
        taken_over = time.monotonic() - killed_at
        assert taken_over < 30, f"taken over after {taken_over:.1f} s: the 60 s lease ran out"
        second.release()
        first.conn.close()
        assert handle.result_sync(timeout=60) == 15
    finally:
        client.stop_sync()
        fm.close()
        coord.close()


def test_vanished_foreman_s_work_is_taken_back_by_a_peer(redis_server):
    """A machine that dies whole (here: its foreman SIGKILLed, its workers with it)
    stops beating; a peer foreman takes back what its workers held within seconds,
    long before their 60 s leases lapse."""
    from tests.support.coordinator import Coordinator

    ns = "fm" + uuid.uuid4().hex[:8]
    coord = Coordinator()
    env = {"BLAZING_LEASE_SECONDS": "60", "BLAZING_HEARTBEAT_SECONDS": "5",
           "BLAZING_TEST_COORD": coord.path, "BLAZING_TEST_GATE": "add:2"}
    args = ("--redis-url", redis_server.url, "--namespace", ns,
            "--app", "tests.apps.durable:app", "--no-auto-optimize")
    doomed = Foreman(*args, "--metrics-addr", f"127.0.0.1:{free_port()}", env=env)
    peer = None
    client = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                      secret=SECRET)
    try:
        doomed.expect(r"started worker.*lane=async")
        victim = int(doomed.expect(r"started worker.*lane=blocking pid=(\d+)")[1])
        handle = client.five_steps(0)
        first = coord.arrival()
        assert first.pid == victim
        peer = Foreman(*args, "--metrics-addr", f"127.0.0.1:{free_port()}", env=env)
        peer.expect(r"started worker.*lane=blocking")
        killed_at = time.monotonic()
        doomed.proc.kill()
        line = peer.expect(r"took back add .*from gone worker", timeout=45).string
        assert handle.unit_id in line
        second = coord.arrival(timeout=45)
        assert second.pid != victim
        taken_over = time.monotonic() - killed_at
        assert taken_over < 30, f"taken over after {taken_over:.1f} s: the 60 s lease ran out"
        second.release()
        first.conn.close()
        assert handle.result_sync(timeout=60) == 15
    finally:
        client.stop_sync()
        doomed.close()
        if peer is not None:
            peer.close()
        coord.close()


def test_crash_loop_stops_with_a_clear_error(redis_server):
    fm = Foreman("--redis-url", redis_server.url, "--namespace", "fmcrash",
                 "--app", "tests.apps.no_such_module:app", "--crash-loop-restarts", "3",
                 "--metrics-addr", "")
    try:
        assert fm.proc.wait(60) == 4
        log = "".join(fm.log)
        assert "crash loop" in log and "no_such_module" in log
    finally:
        fm.close()


def test_unreachable_redis_is_a_clear_error():
    url = f"redis://user:sekret@127.0.0.1:{free_port()}/0"
    fm = Foreman("--redis-url", url, "--app", "tests.apps.durable:app", "--metrics-addr", "")
    try:
        assert fm.proc.wait(30) == 5
        log = "".join(fm.log)
        assert "127.0.0.1" in log and "sekret" not in log
    finally:
        fm.close()


def decisions(redis_server, ns: str) -> list[dict[str, str]]:
    """The decision stream, oldest first, as dicts."""
    out = subprocess.run(["redis-cli", "-p", str(redis_server.port), "--raw", "xrange",
                          f"{{{ns}}}:decisions", "-", "+"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    entries: list[dict[str, str]] = []
    words: list[str] = []
    for line in out.splitlines() + ["0-0"]:
        if re.fullmatch(r"\d+-\d+", line):  # an entry id starts the next entry
            if words:
                entries.append(dict(zip(words[::2], words[1::2], strict=True)))
            words = []
        else:
            words.append(line)
    return entries


def test_optimizer_moves_the_mix_with_the_load(redis_server):
    ns = "fmopt" + uuid.uuid4().hex[:6]
    fm = Foreman("--redis-url", redis_server.url, "--namespace", ns,
                 "--app", "tests.apps.durable:app", "--metrics-addr", "", *OPTIMIZING)
    client = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                      secret=SECRET)
    try:
        # A CPU-heavy burst moves workers to the blocking lane; an I/O-heavy one moves
        # them back.
        cpu_then_io_bursts(fm, client)

        moves = [(int(d["before_async"]), int(d["after_async"]))
                 for d in decisions(redis_server, ns) if d.get("applied") == "true"]
        toward_blocking = [i for i, (b, a) in enumerate(moves) if a < b]
        toward_async = [i for i, (b, a) in enumerate(moves) if a > b]
        assert toward_blocking and toward_async, moves
        assert toward_blocking[0] < toward_async[-1], "blocking first, then async"
        for d in decisions(redis_server, ns)[:3]:
            assert {"time", "action", "reason", "async_urgency", "blocking_depth"} <= set(d)
    finally:
        client.stop_sync()
        fm.close()


def test_silent_worker_is_killed_and_replaced(redis_server):
    ns = "fmhung" + uuid.uuid4().hex[:6]
    fm = Foreman("--redis-url", redis_server.url, "--namespace", ns,
                 "--app", "tests.apps.durable:app", "--metrics-addr", "",
                 "--blocking-workers", "0", "--min-blocking", "0", "--heartbeat-timeout", "2",
                 env={"BLAZING_HEARTBEAT_SECONDS": "0.5", "BLAZING_LEASE_SECONDS": "2"})
    client = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                      secret=SECRET)
    try:
        stuck_pid = int(fm.expect(r"started worker.*lane=async pid=(\d+)")[1])
        handle = client.hog()  # blocks that worker's event loop: its beats stop
        m = fm.expect(r"stopped heartbeating; killing it.*worker=(\S+)", timeout=60)
        assert m[1].startswith("async-")
        fm.expect(r"started worker.*lane=async pid=(\d+)")
        assert not alive(stuck_pid)
        # The replacement takes the step over once its lease lapses.
        assert handle.result_sync(timeout=60) == "unstuck"
    finally:
        client.stop_sync()
        fm.close()


def test_two_foremen_see_each_other_and_share_work(redis_server):
    """Two foremen on one namespace see each other, and each one's workers take a share of
    the one queue: shown first by two gated steps that one worker cannot hold both of,
    then by the counters of a 200-run load."""
    from tests.support.coordinator import Coordinator

    ns = "fmtwo" + uuid.uuid4().hex[:6]
    ports = [free_port(), free_port()]
    coord = Coordinator()
    env = {"BLAZING_TEST_COORD": coord.path, "BLAZING_TEST_GATE": "whose"}
    fms = [Foreman("--redis-url", redis_server.url, "--namespace", ns,
                   "--app", "tests.apps.durable:app", "--metrics-addr", f"127.0.0.1:{p}",
                   "--async-workers", "1", "--blocking-workers", "1",
                   "--blocking-concurrency", "1", "--no-auto-optimize", env=env)
           for p in ports]
    client = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                      secret=SECRET)
    try:
        foreman_of: dict[int, int] = {}  # worker pid -> index of the foreman that runs it
        for i, fm in enumerate(fms):
            for _ in range(2):
                foreman_of[int(fm.expect(r"started worker.*lane=\w+ pid=(\d+)")[1])] = i
        # Each blocking worker holds one step at a time (one thread): with the first
        # gated step held by one foreman's worker, the second must go to the other's.
        gated = [client.whose(), client.whose()]
        arrivals = [coord.arrival(), coord.arrival()]
        assert {foreman_of[a.pid] for a in arrivals} == {0, 1}, (arrivals, foreman_of)
        for a in arrivals:
            a.release()
        assert {foreman_of[h.result_sync(timeout=60)] for h in gated} == {0, 1}

        handles = [client.three_incs(i) for i in range(200)]
        assert [h.result_sync(timeout=60) for h in handles] == [i + 3 for i in range(200)]
        # Each foreman registers every 2 s; the second scrape sees both.
        deadline = time.monotonic() + 20
        while min(metrics(p)["blazing_foremen"] for p in ports) < 2:
            assert time.monotonic() < deadline, "the foremen never saw each other"
            time.sleep(0.5)  # registration is a 2 s beat in another process: re-read it
        assert len(redis_server.cli("zrange", f"{{{ns}}}:foremen", "0", "-1").split()) == 2
        # Their workers took the work from the one shared queue: 2 steps, then 200 runs
        # of a workflow and three steps. Workers report their counters on a 2 s beat, so
        # the scrape is repeated until the last beat is in; each foreman's own count
        # shows its share.
        deadline = time.monotonic() + 20
        while sum(started := [metrics(p)["blazing_operations_started_total"]
                              for p in ports]) < 802:
            assert time.monotonic() < deadline, f"the workers did not report the work: {started}"
            time.sleep(0.5)  # beats come from other processes every 2 s: re-read
        assert min(started) >= 1, started
        print(f"operations started per foreman: {started}")
    finally:
        client.stop_sync()
        for fm in fms:
            fm.proc.send_signal(signal.SIGTERM)
        for fm in fms:
            assert fm.proc.wait(30) == 0
            fm.close()
        coord.close()


def test_redis_vanishing_is_reported_and_survived(redis_server):  # noqa: ARG001 - skips without redis-server
    """Redis stops under a running foreman, then comes back (empty: no persistence):
    the outage is reported once, and the same foreman's workers serve new work after."""
    from tests.support.redis_server import RedisServer

    ns = "fmgone" + uuid.uuid4().hex[:6]
    with RedisServer() as redis:
        fm = Foreman("--redis-url", redis.url, "--namespace", ns,
                     "--app", "tests.apps.durable:app", "--metrics-addr", "",
                     "--blocking-workers", "0", "--min-blocking", "0")
        client = make_app(redis_url=redis.url, namespace=ns, local_workers=False,
                          secret=SECRET)
        try:
            worker = int(fm.expect(r"started worker.*lane=async pid=(\d+)")[1])
            assert client.run_sync("three_incs", 1) == 4  # work flows before the outage
            redis.stop()
            fm.expect(r"Redis unreachable", timeout=30)
            redis.start()
            fm.expect(r"Redis reachable again", timeout=30)
            # New work, submitted after Redis came back, is served by the same worker.
            handles = [client.three_incs(i) for i in range(20)]
            assert [h.result_sync(timeout=60) for h in handles] == [i + 3 for i in range(20)]
            assert alive(worker), "the foreman's worker rode out the outage"
            assert "started worker" not in "".join(fm.log).split("Redis reachable again")[1]
            assert sum("Redis unreachable" in line for line in fm.log) == 1, "reported once"
            fm.proc.send_signal(signal.SIGTERM)
            assert fm.proc.wait(60) == 0
        finally:
            client.stop_sync()
            fm.close()
