"""Shared fixtures for the embedded-runtime tests: fresh apps, stopped after each test."""

import pytest

from blazing import Blazing, SyncBlazing


@pytest.fixture
def make_app():
    """Factory: ``make_app(**options)`` builds a fresh ``Blazing`` stopped after the test."""
    apps = []

    def factory(cls=Blazing, **options):
        app = cls(**options)
        apps.append(app)
        return app

    yield factory
    for app in reversed(apps):
        if isinstance(app, SyncBlazing):
            app.stop()
        else:
            app.stop_sync()


@pytest.fixture
def app(make_app):
    """A fresh ``Blazing()`` with no arguments (embedded store)."""
    return make_app()


@pytest.fixture
def sync_app(make_app):
    """A fresh ``SyncBlazing()`` with no arguments."""
    return make_app(SyncBlazing)


@pytest.fixture(autouse=True)
def _embedded_unless_asked(monkeypatch):
    """Tests run embedded unless they ask for Redis: a stray BLAZING_REDIS_URL is ignored."""
    monkeypatch.delenv("BLAZING_REDIS_URL", raising=False)
    monkeypatch.delenv("BLAZING_LOCAL_WORKERS", raising=False)


@pytest.fixture(scope="session")
def redis_server():
    """One real redis-server for the session, on a free loopback port."""
    from tests.support.redis_server import RedisServer, require_redis

    try:
        server = RedisServer()
    except RuntimeError as exc:
        if require_redis():
            raise
        pytest.skip(str(exc))
    server.start()
    yield server
    server.close()


def _server(make, libraries=()):
    """Start a server for the session, or skip (fail where servers are required) when
    its program or the connector's library is missing."""
    import importlib

    from tests.support.sockets import require_servers

    try:
        for lib in libraries:
            try:
                importlib.import_module(lib)
            except ImportError:
                raise RuntimeError(f"{lib} is not installed (pip install -e '.[test]')") from None
        server = make()
    except RuntimeError as exc:
        if require_servers():
            raise
        pytest.skip(str(exc))
    return server


@pytest.fixture(scope="session")
def pg_server():
    """One real PostgreSQL cluster for the session (tests/support/pg_server.py)."""
    from tests.support.pg_server import PostgresServer

    server = _server(PostgresServer, ("sqlalchemy", "asyncpg", "psycopg"))
    with server:
        yield server


@pytest.fixture(scope="session")
def ssh_server():
    """One real sshd for the session (tests/support/ssh_server.py)."""
    from tests.support.ssh_server import SSHServer

    server = _server(SSHServer, ("asyncssh",))
    with server:
        yield server


@pytest.fixture(scope="session")
def http_server():
    """One uvicorn HTTP server for the session (tests/support/http_server.py)."""
    from tests.support.http_server import HTTPServer

    server = _server(HTTPServer, ("httpx",))
    with server:
        yield server
