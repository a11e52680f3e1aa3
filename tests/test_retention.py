"""Retention, shown by behaviour: how long finished runs stay (the TTLs Redis holds for
them, and runs gone once a short retention has passed) and how many stay at most."""

from __future__ import annotations

import time
import uuid

import pytest

from blazing.errors import RunNotFound

pytestmark = pytest.mark.timeout(120)


class Boom(Exception):
    """The failure of the failing run."""


def register(app):
    """A workflow that succeeds and one that fails."""

    @app.step
    async def double(x: int) -> int:
        return 2 * x

    @app.workflow
    async def fine(x: int) -> int:
        return await double(x)

    @app.workflow
    async def broken() -> None:
        raise Boom("on purpose")


def finish_both(app):
    """Run ``fine`` and ``broken`` to their ends; return their handles."""
    ok, bad = app.fine(21), app.broken()
    assert ok.result_sync(timeout=30) == 42
    with pytest.raises(Boom):
        bad.result_sync(timeout=30)
    return ok, bad


def gone(handle) -> bool:
    """Whether the store no longer knows the run."""
    try:
        handle.status_sync()
    except RunNotFound:
        return True
    return False


def wait_until(what: str, check, timeout: float = 30.0) -> None:
    """Re-check ``check`` (a state of the store) until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"after {timeout} s: not {what}"
        time.sleep(0.1)  # the store expires and trims on its own clock: look again


@pytest.fixture
def redis_app(make_app, redis_server):
    """``redis_app(**options)``: an app with local workers on a fresh namespace."""
    def factory(**options):
        ns = "ret" + uuid.uuid4().hex[:8]
        app = make_app(redis_url=redis_server.url, namespace=ns, **options)
        register(app)
        return app, ns
    return factory


def run_keys(redis_server, ns: str, unit: str) -> list[str]:
    """Every key of the namespace that belongs to the run ``unit``."""
    out = redis_server.cli("--scan", "--pattern", f"{{{ns}}}:*{unit}*")
    return out.split()


def test_redis_keys_expire_after_the_retention_of_their_outcome(redis_app, redis_server):
    app, ns = redis_app(retention_seconds=100, failed_retention_seconds=1000)
    ok, bad = finish_both(app)
    for handle, low, high in ((ok, 1, 100), (bad, 101, 1000)):
        keys = run_keys(redis_server, ns, handle.unit_id)
        assert any(f":o:{handle.unit_id}:" in k for k in keys), keys
        ttls = {k: int(redis_server.cli("ttl", k)) for k in keys}
        assert all(low <= t <= high for t in ttls.values()), (handle, ttls)
    assert [r.unit_id for r in app.failed_runs()] == [bad.unit_id]


def test_redis_runs_are_gone_after_a_short_retention(redis_app):
    app, _ = redis_app(retention_seconds=1, failed_retention_seconds=2)
    ok, bad = finish_both(app)
    wait_until("the succeeded run expired", lambda: gone(ok))
    wait_until("the failed run and its dead letter expired",
               lambda: gone(bad) and not app.failed_runs())


def test_embedded_runs_are_gone_after_a_short_retention(make_app):
    # The embedded store keeps every finished run for retention_seconds
    # (failed_retention_seconds is the Redis store's).
    app = make_app(retention_seconds=1)
    register(app)
    ok, bad = finish_both(app)
    wait_until("both runs expired", lambda: gone(ok) and gone(bad))


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_retention_max_runs_keeps_the_newest(request, make_app, store):
    if store == "redis":
        app, _ = request.getfixturevalue("redis_app")(retention_max_runs=3)
    else:
        app = make_app(retention_max_runs=3)
        register(app)
    handles = []
    for i in range(8):  # one after another: their order is their age
        handles.append(app.fine(i))
        assert handles[-1].result_sync(timeout=30) == 2 * i
    wait_until("the 5 oldest runs deleted", lambda: all(gone(h) for h in handles[:5]))
    assert [h.status_sync() for h in handles[5:]] == ["succeeded"] * 3
