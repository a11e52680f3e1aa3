"""The app the connector tests run in real worker processes.

Its connectors are made here, in each process that imports it, from this process's
environment (the tests' servers): nothing of them goes through Redis. Each is made
only if its server is named, in a different spelling each: the class with keyword
arguments (PostgreSQL), the examples' dict form (HTTP), a factory (SSH).

- ``BLAZING_TEST_PG_URL``, ``BLAZING_TEST_PG_POOL`` (pool_size), ``…_PG_OVERFLOW``,
  ``BLAZING_TEST_PG_BAD_URL`` (a second database connector, ``baddb``)
- ``BLAZING_TEST_HTTP_URL``, ``BLAZING_TEST_HTTP_POOL``, ``BLAZING_TEST_HTTP_CLASS``
  (its ``target_class_name``, default ``RESTConnector``), ``BLAZING_TEST_HTTP_TOKEN``
- ``BLAZING_TEST_SSH_PORT``, ``…_SSH_USER``, ``…_SSH_KEY``, ``…_SSH_KNOWN_HOSTS``
- ``BLAZING_TEST_EAGER=1``: every connector connects at worker start
"""

from __future__ import annotations

import os
import threading
from typing import Any

from blazing import BaseService, Blazing
from blazing.connectors import SQLConnector, SSHConnector

env = os.environ.get


def connectors_from_env() -> dict[str, Any]:
    """The connectors this process's environment names (none in a test's client)."""
    eager = env("BLAZING_TEST_EAGER") == "1"
    connectors: dict[str, Any] = {}
    if env("BLAZING_TEST_PG_URL"):
        connectors["db"] = SQLConnector(
            env("BLAZING_TEST_PG_URL"), pool_size=int(env("BLAZING_TEST_PG_POOL", "4")),
            max_overflow=int(env("BLAZING_TEST_PG_OVERFLOW", "0")), eager=eager,
            reconnect_timeout=30)
    if env("BLAZING_TEST_PG_BAD_URL"):
        connectors["baddb"] = SQLConnector(env("BLAZING_TEST_PG_BAD_URL"))
    if env("BLAZING_TEST_HTTP_URL"):
        auth: dict[str, Any] = {"base_url": env("BLAZING_TEST_HTTP_URL"),
                                # Lets the server count connections per worker process.
                                "headers": {"X-Client-Pid": str(os.getpid())}}
        if env("BLAZING_TEST_HTTP_TOKEN"):
            auth["token"] = env("BLAZING_TEST_HTTP_TOKEN")
        connectors["api"] = {
            "name": "api",
            "target_class_name": env("BLAZING_TEST_HTTP_CLASS", "RESTConnector"),
            "auth": auth,
            "pool": {"size": int(env("BLAZING_TEST_HTTP_POOL", "3")), "max_overflow": 0},
            "options": {"retries": 8, "backoff": 0.1, "backoff_max": 1.0},
            "eager": eager,
        }
    if env("BLAZING_TEST_SSH_PORT"):
        def make_ssh() -> SSHConnector:
            """A factory: called once, in the process that runs the steps."""
            return SSHConnector("127.0.0.1", port=int(env("BLAZING_TEST_SSH_PORT", "22")),
                                username=env("BLAZING_TEST_SSH_USER"),
                                key_file=env("BLAZING_TEST_SSH_KEY"),
                                known_hosts=env("BLAZING_TEST_SSH_KNOWN_HOSTS"),
                                keepalive_interval=2, eager=eager,
                                # The tests count sshd's sessions, one per command: a
                                # background health check (`true`) would be one more.
                                health_check_interval=0)

        connectors["ssh"] = make_ssh
    return connectors


def make_app(**options: Any) -> Blazing:
    """The app (Redis from BLAZING_REDIS_URL unless given), with its connectors."""
    app = Blazing(connectors=connectors_from_env(), **options)

    @app.service
    class Backends(BaseService):
        """The three connectors, as a service reaches them (``__init__(self, connectors)``)."""

        def __init__(self, connectors: dict[str, Any]) -> None:
            super().__init__(connectors)
            self.db = connectors.get("db")
            self.api = connectors.get("api")
            self.ssh = connectors.get("ssh")

        async def backend_pid(self) -> int:
            return await self.db.scalar("SELECT pg_backend_pid()")

        def backend_pid_sync(self) -> int:
            return self.db.scalar_sync("SELECT pg_backend_pid()")


    def _where() -> tuple[int, str]:
        return os.getpid(), threading.current_thread().name


    @app.step(retries=8, retry_backoff=0.2, retry_backoff_max=2)
    async def touch(i: int, use_ssh: bool, services: Any = None) -> dict[str, Any]:
        """Async: a SELECT, a GET and (if asked) a command, each through its pool."""
        b = services["Backends"]
        out: dict[str, Any] = {"where": _where()}
        if b.db is not None:
            out["backend"] = await b.backend_pid()
        if b.api is not None:
            resp = await b.api.get("/ping")
            resp.raise_for_status()
            out["http"] = resp.text
        if b.ssh is not None and use_ssh:
            out["ssh"] = (await b.ssh.run(f"echo {i}", check=True)).stdout.strip()
        return out


    @app.step(retries=8, retry_backoff=0.2, retry_backoff_max=2)
    def touch_blocking(i: int, use_ssh: bool, services: Any = None) -> dict[str, Any]:
        """Blocking: the same through the calling thread's own pools."""
        b = services["Backends"]
        out: dict[str, Any] = {"where": _where()}
        if b.db is not None:
            out["backend"] = b.backend_pid_sync()
        if b.api is not None:
            resp = b.api.get_sync("/ping")
            resp.raise_for_status()
            out["http"] = resp.text
        if b.ssh is not None and use_ssh:
            out["ssh"] = b.ssh.run_sync(f"echo {i}", check=True).stdout.strip()
        return out


    @app.step
    async def bad_login(services: Any = None) -> int:
        """Connects with a wrong password: its error (not the password) reaches the caller."""
        return await services["Backends"].connectors["baddb"].scalar("SELECT 1")

    return app


app = make_app()
