"""Connectors in one process (embedded apps): the spellings and wiring, the lifecycle,
pools and overflow, retries, throttling and SSH multiplexing, against real servers
(PostgreSQL, sshd, uvicorn) counted on their side. The worker-process tests are in
test_connector_workers.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from blazing import BaseService, Blazing
from blazing.connectors import (
    Connector,
    ConnectorConfigError,
    Connectors,
    ConnectorUnavailable,
    HTTPConnector,
    RESTConnector,
    SQLAlchemyConnector,
    SQLConnector,
    SSHConnector,
    Throttle,
    from_spec,
)
from blazing.errors import ConfigurationError
from tests.support.pg_server import wait_sessions
from tests.support.sockets import client_connections, wait_for

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[1]


def ssh_of(sshd, **kw: Any) -> SSHConnector:
    options = {"port": sshd.port, "username": sshd.user, "key_file": str(sshd.user_key),
               "known_hosts": str(sshd.known_hosts), **kw}
    return SSHConnector("127.0.0.1", **options)


# ----------------------------------------------------------------- spellings

def test_importing_blazing_imports_no_connector_library():
    code = ("import sys, blazing, blazing.connectors\n"
            "print([m for m in ('sqlalchemy', 'httpx', 'asyncssh') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]", out.stderr


def test_aliases_are_the_same_classes():
    assert SQLAlchemyConnector is SQLConnector and RESTConnector is HTTPConnector


def test_dict_form_builds_the_class_it_names():
    db = from_spec("db", {"name": "db", "target_class_name": "SQLAlchemyConnector",
                          "auth": {"url": "postgresql+asyncpg://u:pw@localhost/app"},
                          "pool": {"size": 7, "max_overflow": 3, "recycle": 60,
                                   "pre_ping": False}})
    assert isinstance(db, SQLConnector) and db.name == "db"
    assert (db.pool_size, db.max_overflow, db.pool_recycle, db.pool_pre_ping) == (7, 3, 60, False)
    assert "pw" not in repr(db) and "***" in repr(db)
    api = from_spec("api", {"target_class_name": "RESTConnector",
                            "auth": {"base_url": "http://localhost:1", "token": "t0k"},
                            "throttling": {"limit": 5, "window": 1, "mode": "fixed"}})
    assert isinstance(api, HTTPConnector) and api.headers["Authorization"] == "Bearer t0k"
    assert (api.throttle.limit, api.throttle.window, api.throttle.mode) == (5, 1.0, "fixed")
    assert "t0k" not in repr(api)
    ssh = from_spec("box", {"target_class_name": "SSHConnector",
                            "auth": {"host": "localhost", "username": "me", "key_file": "~/k"},
                            "pool": {"size": 4}})
    assert isinstance(ssh, SSHConnector) and ssh.max_sessions == 4
    assert ssh.key_files == [os.path.expanduser("~/k")]


@pytest.mark.parametrize("spec, message", [
    ({"target_class_name": "KafkaConnector"}, "connector 'x': unknown target_class_name "
                                              "'KafkaConnector'"),
    ({}, "connector 'x': target_class_name is missing"),
    ({"target_class_name": "SQLConnector", "auth": {"url": "sqlite://"}, "colour": 1},
     r"connector 'x': unknown keys \['colour'\]"),
    ({"name": "y", "target_class_name": "SQLConnector"}, "its dict says name='y'"),
    ({"target_class_name": "SQLConnector", "auth": {"url": "sqlite://", "pasword": "p"}},
     r"connector 'x' \(SQLConnector\).*unexpected keyword argument 'pasword'"),
    ({"target_class_name": "HTTPConnector", "throttling": {"limit": 0, "window": 1}},
     "connector 'x': throttling limit must be"),
    ({"target_class_name": "HTTPConnector", "throttling": {"limit": 1, "window": 1,
                                                           "mode": "sliding"}},
     "mode must be 'fixed' or 'rolling'"),
])
def test_bad_dicts_name_the_connector(spec, message):
    with pytest.raises(ConnectorConfigError, match=message):
        from_spec("x", spec)


def test_app_refuses_bad_connectors_at_construction():
    with pytest.raises(ConfigurationError, match="connector 'q': unknown target_class_name"):
        Blazing(connectors={"q": {"target_class_name": "Nope"}})
    with pytest.raises(ConfigurationError, match="connector 'q': expected a connector"):
        Blazing(connectors={"q": 42})
    with pytest.raises(ConfigurationError, match="made with name='other'"):
        Blazing(connectors={"q": SQLConnector("sqlite://", name="other")})


def test_missing_library_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "asyncssh", None)  # import asyncssh now fails
    conn = SSHConnector("localhost", known_hosts=None)
    with pytest.raises(ConnectorConfigError,
                       match=r"connector 'ssh' needs the asyncssh package.*blazing\[ssh\]"):
        conn.validate()


def test_factories_run_once_per_process_and_only_where_work_runs(make_app, tmp_path):
    calls = []

    def factory() -> Connector:
        calls.append(threading.get_ident())
        return SQLConnector(f"sqlite+aiosqlite:///{tmp_path}/f.db")

    app = make_app(connectors={"db": factory})
    assert calls == []  # importing the app module makes nothing

    @app.service
    class Uses(BaseService):
        def __init__(self, connector_instances=None):
            super().__init__(connector_instances)

    @app.step
    async def one(services=None):
        return await services["Uses"].connectors["db"].scalar("SELECT 41 + 1")

    assert app.run_sync("one") == 42
    assert app.run_sync("one") == 42
    assert len(calls) == 1 and app.connectors["db"] is app.connectors["db"]


def test_every_service_shape_gets_the_connectors(make_app, tmp_path):
    db = SQLConnector(f"sqlite+aiosqlite:///{tmp_path}/s.db")
    app = make_app(connectors={"db": db})

    @app.service
    class Positional(BaseService):
        def __init__(self, connectors):
            super().__init__(connectors)
            self.db = connectors["db"]

    @app.service
    class Keyword(BaseService):
        def __init__(self, connector_instances=None):
            super().__init__(connector_instances)

    @app.service
    class NoInit(BaseService):
        async def _async_init(self):
            self.answer = await self.connectors["db"].scalar("SELECT 7")

    @app.workflow
    async def wf(services=None):
        return [services["Positional"].db is db, services.get("Keyword").connectors["db"] is db,
                services["NoInit"].answer]

    assert app.run_sync("wf") == [True, True, 7]

    async def created():
        return await NoInit.create({"db": db})

    assert asyncio.run(created()).answer == 7


# --------------------------------------------------------------- SQL / pools

def test_sessions_and_transactions_commit_and_roll_back(pg_server, make_app):
    db = SQLConnector(pg_server.url(), pool_size=2)
    app = make_app(connectors={"db": db})

    @app.step
    async def write(services=None):
        from sqlalchemy import text
        await db.execute("CREATE TABLE IF NOT EXISTS notes (n int)")
        await db.execute("DELETE FROM notes")
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO notes VALUES (1)"))
        with pytest.raises(ZeroDivisionError):
            async with db.transaction() as conn:
                await conn.execute(text("INSERT INTO notes VALUES (2)"))
                1 / 0  # noqa: B018 - the failure that rolls back
        async with db.session() as s:
            await s.execute(text("INSERT INTO notes VALUES (3)"))
            await s.commit()
        async with db.session() as s:
            await s.execute(text("INSERT INTO notes VALUES (4)"))  # never committed
        factory = await db.session_factory()
        async with factory() as s, s.begin():
            await s.execute(text("INSERT INTO notes VALUES (5)"))
        return [r[0] for r in await db.fetch_all("SELECT n FROM notes ORDER BY n")]

    @app.step
    def read_blocking(services=None):
        from sqlalchemy import text
        with db.session_sync() as s:
            s.execute(text("INSERT INTO notes VALUES (6)"))
            s.commit()
        return [r.n for r in db.fetch_all_sync("SELECT n FROM notes ORDER BY n")]

    assert app.run_sync("write") == [1, 3, 5]
    assert app.run_sync("read_blocking") == [1, 3, 5, 6]


def test_overflow_opens_past_the_pool_and_closes_back_to_it(pg_server, make_app):
    db = SQLConnector(pg_server.url(), name="ovf", pool_size=2, max_overflow=3)
    app = make_app(connectors={"ovf": db})
    me = f"blazing:ovf:{os.getpid()}"

    @app.step
    async def hold(services=None):
        return await db.scalar("SELECT pg_backend_pid() FROM pg_sleep(0.3)")

    @app.workflow
    async def burst(services=None):
        return await asyncio.gather(*[hold() for _ in range(20)])

    seen: list[int] = []
    t = threading.Thread(target=lambda: seen.extend(app.run_sync("burst")))
    t.start()
    # Five at once, no more: the pool's two and three overflow connections.
    peak = wait_sessions(pg_server, lambda s: s.get(me, 0) >= 5)
    t.join(60)
    assert peak[me] == 5 and len(seen) == 20
    # Overflow connections close as they come back; the pool's two stay.
    assert wait_sessions(pg_server, lambda s: s.get(me, 0) == 2)[me] == 2
    app.stop_sync()
    assert wait_sessions(pg_server, lambda s: me not in s) == {}


def test_a_pool_per_event_loop_and_per_thread_all_closed_by_disconnect(pg_server):
    db = SQLConnector(pg_server.url(), name="loops", pool_size=1, max_overflow=0)
    me = f"blazing:loops:{os.getpid()}"

    async def pid_on_loop():
        return await db.scalar("SELECT pg_backend_pid()")

    loops = [asyncio.new_event_loop() for _ in range(2)]
    try:
        pids = [loop.run_until_complete(pid_on_loop()) for loop in loops for _ in range(3)]
        threads = []
        for _ in range(2):
            t = threading.Thread(target=lambda: pids.append(db.scalar_sync("SELECT "
                                                                            "pg_backend_pid()")))
            t.start()
            threads.append(t)
        for t in threads:
            t.join(30)
        assert len(set(pids[:3])) == 1 and len(set(pids[3:6])) == 1 and len(set(pids)) == 4
        assert pg_server.sessions()[me] == 4
        loops[0].run_until_complete(db.disconnect())  # closes the other loop's and threads' too
        assert wait_sessions(pg_server, lambda s: me not in s) == {}
    finally:
        for loop in loops:
            loop.close()


def test_eager_connects_at_start_and_stop_closes(pg_server, make_app):
    db = SQLConnector(pg_server.url(), name="eager", eager=True)
    app = make_app(connectors={"eager": db})
    me = f"blazing:eager:{os.getpid()}"
    assert me not in pg_server.sessions()
    asyncio.run(app.start())
    assert pg_server.sessions()[me] == 1  # connected before any step ran
    app.stop_sync()
    assert wait_sessions(pg_server, lambda s: me not in s) == {}
    assert pg_server.log_count("unexpected EOF", me) == 0


def test_unreachable_database_is_unavailable_after_its_reconnect_timeout(pg_server):
    db = SQLConnector(pg_server.url().replace(str(pg_server.port), "1"), reconnect_timeout=0.5,
                      reconnect_backoff=0.05)

    async def use():
        return await db.scalar("SELECT 1")

    started = time.monotonic()
    with pytest.raises(ConnectorUnavailable, match=r"connector 'sql' \(SQLConnector "
                                                   r"postgresql\+asyncpg://blazing:\*\*\*@"):
        asyncio.run(use())
    assert time.monotonic() - started < 5


# ---------------------------------------------------------------------- HTTP

def assert_retry_rules(http_server, prefix: str, got, post, limited, waited: float,
                       gave_up) -> None:
    """What the four /flaky/<prefix>a..d calls of the HTTP retry tests must show: a
    GET retried through two 503s, a POST not retried, a 429 retried after its
    Retry-After, a GET given up after three retries."""
    assert (got.status_code, got.text) == (200, "3")
    assert post.status_code == 503
    assert (limited.status_code, limited.text) == (200, "2") and waited >= 0.5
    assert gave_up.status_code == 502
    hits = Counter(r.path for r in http_server.requests())
    assert hits[f"/flaky/{prefix}a"] == 3 and hits[f"/flaky/{prefix}b"] == 1
    assert hits[f"/flaky/{prefix}c"] == 2
    assert hits[f"/flaky/{prefix}d"] == 4  # the first try and three retries


def test_http_retries_5xx_and_429_for_what_is_safe_to_send_again(http_server):
    api = HTTPConnector(http_server.url, retries=3, backoff=0.05, health_path="/ping")

    async def main():
        got = await api.get("/flaky/a?fail=2&status=503")
        post = await api.post("/flaky/b?fail=1&status=503")  # not idempotent: no retry
        t0 = time.monotonic()
        limited = await api.post("/flaky/c?fail=1&status=429&retry_after=0.5")
        waited = time.monotonic() - t0
        gave_up = await api.get("/flaky/d?fail=9&status=502")
        healthy = await api.health_check()
        await api.disconnect()
        return got, post, limited, waited, gave_up, healthy

    got, post, limited, waited, gave_up, healthy = asyncio.run(main())
    assert_retry_rules(http_server, "", got, post, limited, waited, gave_up)
    assert healthy


def test_http_retries_statuses_from_blocking_threads_too(http_server):
    """The blocking twin of the async retry rules (request_sync)."""
    api = HTTPConnector(http_server.url, retries=3, backoff=0.05)
    got = api.get_sync("/flaky/sa?fail=2&status=503")
    post = api.post_sync("/flaky/sb?fail=1&status=503")  # not idempotent: no retry
    t0 = time.monotonic()
    limited = api.post_sync("/flaky/sc?fail=1&status=429&retry_after=0.5")
    waited = time.monotonic() - t0
    gave_up = api.get_sync("/flaky/sd?fail=9&status=502")
    assert_retry_rules(http_server, "s", got, post, limited, waited, gave_up)


def test_unreachable_database_is_unavailable_from_blocking_threads_too(pg_server):
    db = SQLConnector(pg_server.url().replace(str(pg_server.port), "1"), reconnect_timeout=0.5,
                      reconnect_backoff=0.05)
    with pytest.raises(ConnectorUnavailable,
                       match=r"connector 'sql' .*cannot .* after \d+ attempts"):
        db.scalar_sync("SELECT 1")
    # A server that answers and refuses the login is not retried: its error comes at once.
    wrong = SQLConnector(pg_server.url(password="wrong"), reconnect_timeout=30)
    with pytest.raises(Exception, match="password authentication failed") as info:
        wrong.scalar_sync("SELECT 1")
    assert not isinstance(info.value, ConnectorUnavailable)


def test_http_connection_refused_is_retried_then_raised():
    import httpx

    api = HTTPConnector("http://127.0.0.1:1", retries=2, backoff=0.01)
    with pytest.raises(httpx.ConnectError):
        api.get_sync("/ping")


@pytest.mark.parametrize("mode", ["rolling", "fixed"])
def test_throttling_holds_its_limit_across_async_and_blocking_steps(http_server, make_app, mode):
    # A whole second per window: the server sees when a request arrives, which a
    # loaded machine delays by varying amounts after the throttle let it go.
    limit, window, margin = 4, 1.0, 0.25
    api = HTTPConnector(http_server.url, headers={"X-Client-Pid": f"throttle-{mode}"},
                        throttling={"limit": limit, "window": window, "mode": mode})
    app = make_app(connectors={"api": api})

    @app.step
    async def ping_async(services=None):
        return (await api.get("/ping")).text

    @app.step
    def ping_blocking(services=None):
        return api.get_sync("/ping").text

    @app.workflow
    async def burst(services=None):
        calls = [ping_async() if i % 2 else ping_blocking() for i in range(20)]
        return await asyncio.gather(*calls)

    assert app.run_sync("burst") == ["pong"] * 20
    at = sorted(r.at for r in http_server.requests() if r.pid == f"throttle-{mode}")
    assert len(at) == 20
    if mode == "rolling":
        # No interval of one window holds more than the limit (less a margin for
        # the time a request takes to reach the server).
        worst = max(sum(1 for b in at if a <= b < a + window - margin) for a in at)
        assert worst <= limit
    else:
        # Windows follow each other from the first request; each holds the limit.
        per_window = Counter(round((t - at[0]) / window) for t in at)
        assert max(per_window.values()) <= limit and len(per_window) == 20 // limit
    assert at[-1] - at[0] >= (20 // limit - 1) * window - margin


def test_throttle_rolling_and_fixed_arithmetic():
    rolling = Throttle(2, 1.0, "rolling")
    assert [rolling._reserve(t) for t in (0.0, 0.1)] == [0.0, 0.0]
    assert rolling._reserve(0.5) == pytest.approx(0.5)  # the slot of t=0.0 frees at 1.0
    assert rolling._reserve(1.0) == 0.0
    fixed = Throttle(2, 1.0, "fixed")
    assert [fixed._reserve(t) for t in (10.0, 10.9)] == [0.0, 0.0]
    assert fixed._reserve(10.95) == pytest.approx(0.05)  # the next window starts at 11.0
    assert [fixed._reserve(t) for t in (11.0, 11.1)] == [0.0, 0.0]


# ----------------------------------------------------------------------- SSH

def test_ssh_multiplexes_commands_and_transfers_on_one_connection(ssh_server, tmp_path):
    ssh = ssh_of(ssh_server, name="box")
    logins = ssh_server.log_count("Accepted publickey")
    src = tmp_path / "up.txt"
    src.write_text("payload")

    async def main():
        outs = await asyncio.gather(*[ssh.run(f"echo {i}", check=True) for i in range(60)])
        await ssh.put(src, str(ssh_server.dir / "up.txt"))
        await ssh.get(str(ssh_server.dir / "up.txt"), tmp_path / "down.txt")
        held = client_connections(ssh_server.port)[os.getpid()]
        await ssh.disconnect()
        return [o.stdout.strip() for o in outs], held

    outs, held = asyncio.run(main())
    assert outs == [str(i) for i in range(60)]  # 60 at once, over sshd's MaxSessions 10
    assert (tmp_path / "down.txt").read_text() == "payload"
    assert held == 1 and ssh_server.log_count("Accepted publickey") - logins == 1
    wait_for(lambda: client_connections(ssh_server.port)[os.getpid()] == 0, 10,
             "the connection closed")


def test_ssh_health_check_notices_a_dropped_link_and_the_next_use_reconnects(ssh_server):
    ssh = ssh_of(ssh_server, keepalive_interval=1)

    async def main():
        assert (await ssh.run("echo one")).stdout == "one\n"
        ssh_server.restart()  # drops the connection
        healthy = await ssh.health_check()  # the dead link, or a new one
        again = (await ssh.run("echo two", check=True)).stdout
        await ssh.disconnect()
        return healthy, again

    logins = ssh_server.log_count("Accepted publickey")
    healthy, again = asyncio.run(main())
    assert again == "two\n"
    # One new login after the restart: by the check (True) or by the next use (False).
    assert ssh_server.log_count("Accepted publickey") - logins == 2
    assert healthy in (True, False)


def test_ssh_bad_settings_are_found_before_connecting(ssh_server, tmp_path):
    with pytest.raises(ConnectorConfigError, match="connector 'ssh'.*key file .* does not exist"):
        ssh_of(ssh_server, key_file=str(tmp_path / "none")).validate()
    with pytest.raises(ConnectorConfigError, match="known_hosts file .* does not exist"):
        SSHConnector("127.0.0.1", port=ssh_server.port,
                     known_hosts=str(tmp_path / "none")).validate()
    with pytest.raises(ConnectorConfigError, match="host 'no-such-host.invalid' does not resolve"):
        SSHConnector("no-such-host.invalid", known_hosts=None).validate()


def test_connectors_mapping_lists_and_makes():
    conns = Connectors({"a": SQLConnector("sqlite://"), "b": lambda: HTTPConnector("http://x")})
    assert list(conns) == ["a", "b"] and len(conns) == 2
    assert [c.name for c in conns.made()] == ["a"]
    assert isinstance(conns["b"], HTTPConnector) and conns["b"].name == "b"
    with pytest.raises(KeyError, match="no connector named 'c'"):
        conns["c"]


def test_blocking_async_steps_close_their_thread_loop_pools_at_stop(pg_server, make_app):
    db = SQLConnector(pg_server.url(), name="bthread", pool_size=1, max_overflow=0)
    app = make_app(connectors={"bthread": db}, worker_config={"blocking_workers": 2})
    me = f"blazing:bthread:{os.getpid()}"

    @app.step(step_type="BLOCKING")
    async def on_thread_loop(services=None):
        # An async step on a blocking thread runs on that thread's own loop.
        return threading.current_thread().name, await db.scalar("SELECT pg_backend_pid()")

    @app.step
    def on_thread(services=None):
        return threading.current_thread().name, db.scalar_sync("SELECT pg_backend_pid()")

    @app.workflow
    async def wf(services=None):
        return [await on_thread_loop() for _ in range(3)] + [await on_thread() for _ in range(3)]

    got = app.run_sync("wf")
    assert all(name.startswith("blazing-blocking-") for name, _ in got)
    assert pg_server.sessions()[me] == len(set(got))  # one per (thread, loop or sync)
    app.stop_sync()
    assert wait_sessions(pg_server, lambda s: me not in s) == {}
    assert pg_server.log_count("unexpected EOF", me) == 0  # each closed on its own loop
