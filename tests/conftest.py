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
