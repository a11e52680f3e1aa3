"""Connectors in real worker processes against real servers (PostgreSQL, sshd, uvicorn),
counted on the servers' side: their own logs and views, and the kernel's table of
their connections.

The app is tests/apps/connected.py; its connectors are made in each worker process
from the environment given here, never sent through Redis.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.apps.connected import make_app
from tests.support.pg_server import PASSWORD, wait_sessions
from tests.support.sockets import PeakSampler, clients_by_port, wait_for
from tests.support.workers import ROOT, WorkerFleet

pytestmark = pytest.mark.timeout(300)

SECRET = "connectors-e2e"


@pytest.fixture
def ns() -> str:
    return "c" + uuid.uuid4().hex[:10]


@pytest.fixture
def servers(pg_server, http_server, ssh_server):
    return pg_server, http_server, ssh_server


def connector_env(pg, web, sshd, **extra: str) -> dict[str, str]:
    """The environment that names the three servers to the app's connectors."""
    return {
        "BLAZING_TEST_PG_URL": pg.url(),
        "BLAZING_TEST_HTTP_URL": web.url,
        "BLAZING_TEST_SSH_PORT": str(sshd.port),
        "BLAZING_TEST_SSH_USER": sshd.user,
        "BLAZING_TEST_SSH_KEY": str(sshd.user_key),
        "BLAZING_TEST_SSH_KNOWN_HOSTS": str(sshd.known_hosts),
        **extra,
    }


@pytest.fixture
def fleet_for(redis_server, ns, tmp_path: Path):
    fleets: list[WorkerFleet] = []

    def make(env: dict[str, str]) -> WorkerFleet:
        f = WorkerFleet({"BLAZING_REDIS_URL": redis_server.url, "BLAZING_NAMESPACE": ns,
                         "BLAZING_SECRET": SECRET, **env},
                        log=tmp_path / "workers.log", app="tests.apps.connected:app")
        fleets.append(f)
        return f

    yield make
    for f in fleets:
        f.close()


@pytest.fixture
def client(redis_server, ns):
    """A client-only app on the namespace: it makes no connector and runs nothing."""
    app = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False, secret=SECRET)
    assert len(app.connectors) == 0
    yield app
    app.stop_sync()


def run_calls(client, calls: list[tuple[str, int, bool]], timeout: float,
              done: list[int] | None = None) -> list[Any]:
    """Submit every (step, i, use_ssh) at once; return the results in order."""
    async def main() -> list[Any]:
        handles = [getattr(client, step)(i, ssh) for step, i, ssh in calls]

        async def one(h: Any) -> Any:
            value = await h.wait_result()
            if done is not None:
                done.append(1)
            return value

        return await asyncio.wait_for(asyncio.gather(*(one(h) for h in handles)), timeout)

    return asyncio.run(main())


def app_name(pid: int) -> str:
    return f"blazing:db:{pid}"


def test_2000_steps_hold_each_process_to_its_pool(servers, fleet_for, client):
    pg, web, sshd = servers
    fleet = fleet_for(connector_env(pg, web, sshd, BLAZING_TEST_PG_POOL="4",
                                    BLAZING_TEST_HTTP_POOL="3"))
    async_workers = [fleet.start("async", concurrency=32) for _ in range(2)]
    blocking = fleet.start("blocking", concurrency=4)
    pids = [w.pid for w in (*async_workers, blocking)]
    accepted = sshd.log_count("Accepted publickey")
    sessions = sshd.log_count("Starting session")
    web.clear()
    calls = [("touch_blocking" if i % 4 == 3 else "touch", i, i % 5 == 0) for i in range(2000)]

    with PeakSampler([pg.port, web.port, sshd.port]) as peaks:
        results = run_calls(client, calls, timeout=240)
        during = pg.sessions()  # still open: pools outlive the steps

    ssh_calls = sum(1 for _, _, s in calls if s)
    assert len(results) == 2000
    assert all(r["http"] == "pong" for r in results)
    assert [r["ssh"] for r, (_, i, s) in zip(results, calls, strict=True) if s] == \
        [str(i) for _, i, s in calls if s]
    by_pid = Counter(r["where"][0] for r in results)
    assert set(by_pid) <= set(pids) and by_pid[blocking.pid] == 500

    # PostgreSQL's side: connections each process ever opened (its log), open now
    # (pg_stat_activity), and at most at once (the kernel's table, sampled).
    opened = {p: pg.log_count("connection authorized", app_name(p)) for p in pids}
    for p in pids:
        assert 1 <= opened[p] <= 4, opened  # pool_size=4, no overflow; blocking: 4 threads
        assert during.get(app_name(p), 0) <= 4, during
        assert peaks.peaks[pg.port][p] <= 4, peaks.peaks
    # The HTTP server's side: one client port per connection, counted per process.
    ports: dict[str, set[int]] = defaultdict(set)
    for req in web.requests():
        ports[req.pid].add(req.client_port)
    for w in async_workers:
        assert 1 <= len(ports[str(w.pid)]) <= 3, {k: len(v) for k, v in ports.items()}
        assert peaks.peaks[web.port][w.pid] <= 3
    assert len(ports[str(blocking.pid)]) <= 4  # one client per thread, one connection each
    assert len(web.requests()) == 2000  # no request needed a retry
    # sshd's side: one login per async process, one per blocking thread that ran
    # a command; every command a session (channel) of those logins.
    logins = sshd.log_count("Accepted publickey") - accepted
    assert 2 <= logins <= 2 + 4
    assert sshd.log_count("Starting session") - sessions == ssh_calls
    for w in async_workers:
        assert peaks.peaks[sshd.port][w.pid] == 1
    # Blocking steps use thread-local pools: each thread kept one backend.
    backends: dict[str, set[int]] = defaultdict(set)
    for r in results:
        if r["where"][0] == blocking.pid:
            backends[r["where"][1]].add(r["backend"])
    assert all(len(b) == 1 for b in backends.values()), backends
    assert len(set().union(*backends.values())) == len(backends)
    print(f"\n2000 steps ({ssh_calls} with ssh) on {pids}: postgres connections opened "
          f"{opened}, peak {dict(peaks.peaks[pg.port])}; http client ports "
          f"{ {k: len(v) for k, v in ports.items()} }; ssh logins {logins}, sessions "
          f"{ssh_calls}; blocking threads -> backends {dict(backends)}; "
          f"{peaks.samples} samples")


def test_servers_restarted_mid_load_steps_reconnect_and_succeed(servers, fleet_for, client):
    pg, web, sshd = servers
    fleet = fleet_for(connector_env(pg, web, sshd))
    a = fleet.start("async", concurrency=16)
    b = fleet.start("blocking", concurrency=2)
    web.clear()
    calls = [("touch_blocking" if i % 4 == 3 else "touch", i, i % 3 == 0) for i in range(600)]
    done: list[int] = []
    out: dict[str, Any] = {}

    def load() -> None:
        try:
            out["results"] = run_calls(client, calls, timeout=240, done=done)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            out["error"] = exc

    t = threading.Thread(target=load)
    t.start()
    wait_for(lambda: len(done) >= 150, 120, "150 of 600 steps done before the restarts")
    at_restart = len(done)
    before = {p: pg.log_count("connection authorized", app_name(p)) for p in (a.pid, b.pid)}
    logins = sshd.log_count("Accepted publickey")
    pg.restart()
    sshd.restart()
    web.restart()
    t.join(260)
    assert "error" not in out, out.get("error")
    results = out["results"]
    assert len(results) == 600 and all(r["http"] == "pong" for r in results)
    assert [r.get("ssh") for r, (_, i, s) in zip(results, calls, strict=True) if s] == \
        [str(i) for _, i, s in calls if s]
    # Both processes connected again after the restart (the server logged new
    # connections), and the steps after it ran on new backends.
    after = {p: pg.log_count("connection authorized", app_name(p)) for p in (a.pid, b.pid)}
    assert all(after[p] > before[p] for p in after), (before, after)
    assert sshd.log_count("Accepted publickey") - logins >= 2  # both processes logged in again
    assert at_restart < 600
    early = {r["backend"] for r in results[:100]}
    assert {r["backend"] for r in results[-100:]} - early  # new backends served the last
    print(f"\nrestarted postgres, sshd and the HTTP server after {at_restart}/600 steps; "
          f"postgres connections per process before {before}, after {after}; "
          f"ssh logins {sshd.log_count('Accepted publickey') - logins}")


def test_sigterm_closes_connections_the_server_sees_them_go(servers, fleet_for, client):
    pg, web, sshd = servers
    fleet = fleet_for(connector_env(pg, web, sshd))
    a = fleet.start("async", concurrency=8)
    b = fleet.start("blocking", concurrency=2)
    k = fleet.start("async", concurrency=8)  # SIGKILLed, for contrast
    calls = [("touch_blocking" if i % 2 else "touch", i, True) for i in range(60)]
    run_calls(client, calls, timeout=120)
    pids = [a.pid, b.pid, k.pid]
    open_now = pg.sessions()
    held = clients_by_port([pg.port, web.port, sshd.port])
    for p in (a.pid, b.pid):
        assert open_now.get(app_name(p), 0) >= 1, open_now
        assert held[pg.port][p] >= 1 and held[web.port][p] >= 1 and held[sshd.port][p] >= 1, held
    # k may have run none of them: give it connections of its own.
    ran_on_k = [r for r in run_calls(client, [("touch", i, True) for i in range(40)], 120)
                if r["where"][0] == k.pid]
    goodbyes = sshd.log_count("Received disconnect")

    assert a.terminate() == 0 and b.terminate() == 0
    wait_sessions(pg, lambda s: not any(app_name(p) in s for p in (a.pid, b.pid)))
    for p in (a.pid, b.pid):
        authorized = pg.log_count("connection authorized", app_name(p))
        assert pg.log_count("disconnection:", app_name(p)) == authorized
        assert pg.log_count("unexpected EOF", app_name(p)) == 0  # each said goodbye
    ssh_goodbyes = sshd.log_count("Received disconnect") - goodbyes
    assert ssh_goodbyes >= 2  # the async worker's link and the blocking thread's
    log = fleet.log_path.read_text()
    for name in ("'db'", "'api'", "'ssh'"):
        assert f"connector {name}" in log and "closed" in log

    k.kill()
    if ran_on_k:
        wait_sessions(pg, lambda s: app_name(k.pid) not in s)
        assert pg.log_count("unexpected EOF", app_name(k.pid)) >= 1
    assert sshd.log_count("Received disconnect") - goodbyes == ssh_goodbyes
    print(f"\nSIGTERM: postgres sessions of {pids[:2]} closed with Terminate (0 unexpected "
          f"EOF), {ssh_goodbyes} ssh disconnects; SIGKILL of {k.pid} ({len(ran_on_k)} steps): "
          f"{pg.log_count('unexpected EOF', app_name(k.pid))} unexpected EOF, 0 ssh "
          "disconnects")


def start_worker(redis_server, ns: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run one worker that should fail at start; its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "blazing.worker", "--app", "tests.apps.connected:app",
         "--type", "async"], cwd=ROOT, capture_output=True, text=True, timeout=90,
        env={**os.environ, "PYTHONPATH": str(ROOT), "BLAZING_REDIS_URL": redis_server.url,
             "BLAZING_NAMESPACE": ns, "BLAZING_SECRET": SECRET, **env})


def test_bad_settings_fail_at_startup_naming_the_connector(servers, redis_server, ns, tmp_path):
    pg, web, sshd = servers
    good = connector_env(pg, web, sshd)

    wrong_host = start_worker(redis_server, ns, {
        **good, "BLAZING_TEST_PG_URL": pg.url().replace("127.0.0.1", "no-such-host.invalid")})
    assert wrong_host.returncode == 3, wrong_host
    assert "connector 'db' (SQLConnector" in wrong_host.stderr
    assert "no-such-host.invalid" in wrong_host.stderr and "does not resolve" in wrong_host.stderr

    missing_key = start_worker(redis_server, ns, {
        **good, "BLAZING_TEST_SSH_KEY": str(tmp_path / "no-such-key")})
    assert missing_key.returncode == 3, missing_key
    assert "connector 'ssh' (SSHConnector" in missing_key.stderr
    assert "key file" in missing_key.stderr and "does not exist" in missing_key.stderr

    unknown_class = start_worker(redis_server, ns, {
        **good, "BLAZING_TEST_HTTP_CLASS": "GraphQLConnector"})
    assert unknown_class.returncode == 2, unknown_class
    assert "connector 'api'" in unknown_class.stderr
    assert "unknown target_class_name 'GraphQLConnector'" in unknown_class.stderr

    # A refused port is only found by connecting: eager=True connects at start.
    refused = start_worker(redis_server, ns, {
        **good, "BLAZING_TEST_EAGER": "1",
        "BLAZING_TEST_PG_URL": pg.url().replace(str(pg.port), "1")})
    assert refused.returncode == 3, refused
    assert "connector 'db' (SQLConnector" in refused.stderr
    assert "ready" not in refused.stdout
    for bad in (wrong_host, missing_key, unknown_class, refused):
        assert PASSWORD not in bad.stderr + bad.stdout


def test_secrets_stay_out_of_redis_and_logs(servers, fleet_for, client, redis_server, tmp_path):
    pg, web, sshd = servers
    wrong = "wrong-pw-5e1f0c"
    token = "tok-secret-77aa31"
    fleet = fleet_for(connector_env(
        pg, web, sshd, BLAZING_TEST_PG_BAD_URL=pg.url(password=wrong),
        BLAZING_TEST_HTTP_TOKEN=token, BLAZING_LOG_LEVEL="DEBUG"))
    fleet.start("async", concurrency=8)
    web.clear()
    results = run_calls(client, [("touch", i, True) for i in range(20)], timeout=120)
    assert all(r["http"] == "pong" for r in results)
    assert {r.auth for r in web.requests() if r.path == "/ping"} == {"Bearer"}

    with pytest.raises(Exception, match="password authentication failed") as failed:
        client.bad_login().result_sync(60)
    assert wrong not in str(failed.value)

    script = (
        "local out = {} "
        "for _, k in ipairs(redis.call('KEYS', '*')) do "
        "  table.insert(out, k) "
        "  local t = redis.call('TYPE', k)['ok'] "
        "  local vals = {} "
        "  if t == 'string' then vals = {redis.call('GET', k)} "
        "  elseif t == 'hash' then vals = redis.call('HGETALL', k) "
        "  elseif t == 'list' then vals = redis.call('LRANGE', k, 0, -1) "
        "  elseif t == 'set' then vals = redis.call('SMEMBERS', k) "
        "  elseif t == 'zset' then vals = redis.call('ZRANGE', k, 0, -1) "
        "  elseif t == 'stream' then "
        "    for _, e in ipairs(redis.call('XRANGE', k, '-', '+')) do "
        "      for _, v in ipairs(e[2]) do table.insert(vals, v) end end "
        "  end "
        "  for _, v in ipairs(vals) do table.insert(out, v) end "
        "end "
        "return table.concat(out, '\\n')")
    everything = redis_server.cli("--no-raw", "EVAL", script, "0")
    assert "password authentication failed" in everything  # errors do travel...
    assert "touch" in everything
    for secret in (PASSWORD, wrong, token):  # ...credentials do not
        assert secret not in everything
        assert secret not in fleet.log_path.read_text()
