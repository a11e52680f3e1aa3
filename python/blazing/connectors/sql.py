"""SQLConnector: SQLAlchemy 2 engines, async on event loops and sync on blocking threads.

One URL serves both: ``postgresql+asyncpg://`` (or ``sqlite+aiosqlite://``) is used
as is on event loops and as ``postgresql+psycopg://`` (``sqlite://``) on blocking
threads, and the other way round; ``async_url=`` and ``sync_url=`` override either.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from blazing.connectors.base import Connector, check_host, redact_url, require

# Which driver each URL scheme uses on an event loop, and on a blocking thread.
ASYNC_DRIVER = {
    "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg", "postgresql+asyncpg": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+psycopg",
    "sqlite": "sqlite+aiosqlite", "sqlite+pysqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "mysql": "mysql+aiomysql", "mysql+pymysql": "mysql+aiomysql",
    "mysql+aiomysql": "mysql+aiomysql", "mysql+asyncmy": "mysql+asyncmy",
}
SYNC_DRIVER = {
    "postgresql+asyncpg": "postgresql+psycopg", "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "sqlite+aiosqlite": "sqlite", "mysql+aiomysql": "mysql+pymysql",
    "mysql+asyncmy": "mysql+pymysql",
}

# SQLSTATE classes of failures that pass: connection exceptions (08), the server
# shutting down or starting up (57P01-57P03), too many connections (53300).
_PASSING_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")


def _sqlstate_passes(exc: BaseException) -> bool | None:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        code = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if isinstance(code, str) and code:
            return code.startswith(_PASSING_SQLSTATES)
        if isinstance(e, (OSError, TimeoutError, ConnectionError)):
            return True
        if (type(e).__name__ == "OperationalError" and type(e).__module__.startswith("psycopg")
                and "FATAL:" not in str(e)):
            # psycopg's "connection failed" carries no SQLSTATE and is no OSError. Without
            # a server's "FATAL:" line (a refused login, say) no server answered at all.
            return True
        e = getattr(e, "orig", None) or e.__cause__ or e.__context__
    return None


class SQLConnector(Connector):
    """A database through SQLAlchemy 2: an ``AsyncEngine`` per event loop (the runtime's
    loop serves every async step of the process) and a sync ``Engine`` per blocking
    thread.

    ``url`` (or ``driver``, ``username``, ``password``, ``host``, ``port``,
    ``database``: the parts of one) names the database. Pool options are SQLAlchemy's:
    ``pool_size``, ``max_overflow``, ``pool_recycle`` (s), ``pool_pre_ping`` (a
    connection is tested at checkout, so one the server dropped is replaced),
    ``pool_timeout`` (s). A blocking thread runs one step at a time, so its engine keeps
    one connection and opens overflow ones only while a step holds two at once.
    PostgreSQL connections say ``application_name=blazing:<name>:<pid>`` unless
    ``application_name=`` (or the URL) says otherwise.

    Async: ``connection()``, ``transaction()``, ``session()``, ``scalar()``,
    ``fetch_all()``, ``fetch_one()``, ``execute()``, ``engine()``,
    ``session_factory()``. Blocking threads: the same with ``_sync``.
    """

    kind = "sql"
    extra = "sql"

    def __init__(self, url: str | None = None, *, name: str | None = None,
                 async_url: str | None = None, sync_url: str | None = None,
                 driver: str | None = None, username: str | None = None,
                 password: str | None = None, host: str | None = None,
                 port: int | None = None, database: str | None = None,
                 pool_size: int = 5, max_overflow: int = 10, pool_recycle: float = 1800.0,
                 pool_pre_ping: bool = True, pool_timeout: float = 30.0,
                 connect_timeout: float = 10.0, application_name: str | None = None,
                 connect_args: Mapping[str, Any] | None = None,
                 engine_options: Mapping[str, Any] | None = None, **options: Any) -> None:
        super().__init__(name=name, **options)
        for opt, value in (("url", url), ("async_url", async_url), ("sync_url", sync_url)):
            if value is not None and (not isinstance(value, str) or "://" not in value):
                raise self.config_error(f"{opt}= must be a database URL string")
        if url is None and driver is None and async_url is None and sync_url is None:
            raise self.config_error("needs url= (or driver= with host=, database=, ...)")
        self._url = url
        self._parts = {"drivername": driver, "username": username, "password": password,
                       "host": host, "port": port, "database": database}
        self._async_url, self._sync_url = async_url, sync_url
        for opt, value in (("pool_size", pool_size), ("max_overflow", max_overflow)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise self.config_error(f"{opt}= must be a non-negative int, not {value!r}")
        if pool_size < 1:
            raise self.config_error("pool_size= must be at least 1")
        self.pool_size, self.max_overflow = pool_size, max_overflow
        self.pool_recycle, self.pool_pre_ping = pool_recycle, bool(pool_pre_ping)
        self.pool_timeout, self.connect_timeout = pool_timeout, connect_timeout
        self.application_name = application_name
        self.connect_args = dict(connect_args or {})
        self.engine_options = dict(engine_options or {})

    # ------------------------------------------------------------- URLs

    def _base_url(self) -> Any:
        sa = require("sqlalchemy", self.extra, self.name)
        if self._url is not None:
            return self._make_url(sa, self._url, "url")
        parts = dict(self._parts)
        if not parts["drivername"]:
            url = self._async_url or self._sync_url
            return self._make_url(sa, url, "async_url" if self._async_url else "sync_url")
        return sa.engine.URL.create(**parts)

    def _make_url(self, sa: Any, text: str, opt: str) -> Any:
        try:
            return sa.engine.make_url(text)
        except Exception:  # noqa: BLE001 - its message repeats the URL, password and all
            raise self.config_error(f"{opt}={redact_url(text)!r} is not a database URL") from None

    def url_for(self, mode: str) -> Any:
        """The SQLAlchemy URL used on event loops (``"async"``) or threads (``"sync"``)."""
        sa = require("sqlalchemy", self.extra, self.name)
        given = self._async_url if mode == "async" else self._sync_url
        if given is not None:
            return self._make_url(sa, given, f"{mode}_url")
        url = self._base_url()
        table = ASYNC_DRIVER if mode == "async" else SYNC_DRIVER
        driver = table.get(url.drivername)
        if driver is None:
            if mode == "async":
                raise self.config_error(
                    f"no async driver is known for {url.drivername!r}: pass async_url=")
            driver = url.drivername
        return url.set(drivername=driver)

    def target(self) -> str:
        try:
            return self._base_url().render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - settings errors are raised where they are checked
            return redact_url(self._url or "")

    def validate(self) -> None:
        """SQLAlchemy and the URL's own driver are installed, and the host resolves.

        The driver of the other side (psycopg for an asyncpg URL on blocking threads,
        and so on) is loaded when that side is first used, which names it if missing.
        """
        url = self._base_url()
        self._dialect(url)
        check_host(self, url.host, url.port)

    def _dialect(self, url: Any) -> Any:
        try:
            return url.get_dialect()
        except Exception as exc:  # noqa: BLE001 - NoSuchModuleError, or the driver missing
            raise self.config_error(
                f"driver {url.drivername!r} is not usable ({type(exc).__name__}: {exc}); "
                "pip install 'blazing[sql]' or the driver's package") from None

    # ---------------------------------------------------------- engines

    def _engine_kwargs(self, url: Any, pool_size: int) -> dict[str, Any]:
        kw: dict[str, Any] = {"pool_pre_ping": self.pool_pre_ping}
        memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
        if not memory:  # an in-memory SQLite database lives in one connection
            kw.update(pool_size=pool_size, max_overflow=self.max_overflow,
                      pool_recycle=self.pool_recycle, pool_timeout=self.pool_timeout)
        args = dict(self.connect_args)
        if url.get_backend_name() == "postgresql":
            app_name = (self.application_name or url.query.get("application_name")
                        or f"blazing:{self.name}:{os.getpid()}")[:63]
            if url.get_driver_name() == "asyncpg":
                settings = dict(args.get("server_settings") or {})
                settings.setdefault("application_name", app_name)
                args["server_settings"] = settings
                args.setdefault("timeout", self.connect_timeout)
            else:
                args.setdefault("application_name", app_name)
                args.setdefault("connect_timeout", max(1, int(self.connect_timeout)))
        if args:
            kw["connect_args"] = args
        kw.update(self.engine_options)
        return kw

    def _retryable(self, exc: BaseException) -> bool:
        verdict = _sqlstate_passes(exc)
        if verdict is not None:
            return verdict
        return bool(getattr(exc, "connection_invalidated", False))

    async def _open(self) -> Any:
        aio = require("sqlalchemy.ext.asyncio", self.extra, self.name)
        url = self.url_for("async")
        self._dialect(url)
        engine = aio.create_async_engine(url, **self._engine_kwargs(url, self.pool_size))
        try:
            async with engine.connect():
                pass  # reach the server now; the connection stays in the pool
        except BaseException:
            await engine.dispose()
            raise
        return engine

    async def _close(self, resource: Any) -> None:
        await resource.dispose()

    async def _ping(self, resource: Any) -> None:
        sa = require("sqlalchemy", self.extra, self.name)
        async with resource.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    def _open_sync(self) -> Any:
        sa = require("sqlalchemy", self.extra, self.name)
        url = self.url_for("sync")
        self._dialect(url)
        engine = sa.create_engine(url, **self._engine_kwargs(url, 1))
        try:
            with engine.connect():
                pass
        except BaseException:
            engine.dispose()
            raise
        return engine

    def _close_sync(self, resource: Any) -> None:
        resource.dispose()

    def _ping_sync(self, resource: Any) -> None:
        sa = require("sqlalchemy", self.extra, self.name)
        with resource.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    # ---------------------------------------------------------- async use

    async def engine(self) -> Any:
        """This event loop's ``AsyncEngine`` (connecting first if needed)."""
        return await self._resource()

    async def session_factory(self, **options: Any) -> Any:
        """An ``async_sessionmaker`` over this loop's engine."""
        aio = require("sqlalchemy.ext.asyncio", self.extra, self.name)
        options.setdefault("expire_on_commit", False)
        return aio.async_sessionmaker(await self._resource(), **options)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A pooled ``AsyncConnection``; checkout waits (with backoff, up to
        ``reconnect_timeout``) while the server cannot be reached."""
        engine = await self._resource()
        await self._throttled()
        conn = await self.retrying(engine.connect, "connect")
        try:
            yield conn
        finally:
            await conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        """A pooled connection in a transaction: committed at the end of the block,
        rolled back if it raises."""
        async with self.connection() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def session(self, **options: Any) -> AsyncIterator[Any]:
        """An ``AsyncSession`` on a pooled connection (call ``commit()`` to keep changes)."""
        aio = require("sqlalchemy.ext.asyncio", self.extra, self.name)
        options.setdefault("expire_on_commit", False)
        async with self.connection() as conn, aio.AsyncSession(bind=conn, **options) as s:
            yield s

    def _statement(self, sql: Any) -> Any:
        if isinstance(sql, str):
            return require("sqlalchemy", self.extra, self.name).text(sql)
        return sql

    async def scalar(self, sql: Any, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row (``sql`` is a string or a SQLAlchemy statement)."""
        async with self.connection() as conn:
            return (await conn.execute(self._statement(sql), params)).scalar()

    async def fetch_all(self, sql: Any, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every row, as SQLAlchemy ``Row`` objects."""
        async with self.connection() as conn:
            return list((await conn.execute(self._statement(sql), params)).all())

    async def fetch_one(self, sql: Any, params: Mapping[str, Any] | None = None) -> Any:
        """The first row, or None."""
        async with self.connection() as conn:
            return (await conn.execute(self._statement(sql), params)).first()

    async def execute(self, sql: Any, params: Any = None) -> int:
        """Run a statement in its own transaction; return the row count."""
        async with self.transaction() as conn:
            return (await conn.execute(self._statement(sql), params)).rowcount

    # ------------------------------------------------- blocking threads

    def engine_sync(self) -> Any:
        """The calling thread's ``Engine`` (connecting first if needed)."""
        return self._resource_sync()

    def session_factory_sync(self, **options: Any) -> Any:
        """A ``sessionmaker`` over the calling thread's engine."""
        orm = require("sqlalchemy.orm", self.extra, self.name)
        options.setdefault("expire_on_commit", False)
        return orm.sessionmaker(self._resource_sync(), **options)

    @contextmanager
    def connection_sync(self) -> Iterator[Any]:
        """A ``Connection`` from the calling thread's engine (see :meth:`connection`)."""
        engine = self._resource_sync()
        self._throttled_sync()
        conn = self.retrying_sync(engine.connect, "connect")
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction_sync(self) -> Iterator[Any]:
        """:meth:`transaction` for blocking threads."""
        with self.connection_sync() as conn, conn.begin():
            yield conn

    @contextmanager
    def session_sync(self, **options: Any) -> Iterator[Any]:
        """A ``Session`` on a connection of the calling thread's engine."""
        orm = require("sqlalchemy.orm", self.extra, self.name)
        options.setdefault("expire_on_commit", False)
        with self.connection_sync() as conn, orm.Session(bind=conn, **options) as s:
            yield s

    def scalar_sync(self, sql: Any, params: Mapping[str, Any] | None = None) -> Any:
        """:meth:`scalar` for blocking threads."""
        with self.connection_sync() as conn:
            return conn.execute(self._statement(sql), params).scalar()

    def fetch_all_sync(self, sql: Any, params: Mapping[str, Any] | None = None) -> list[Any]:
        """:meth:`fetch_all` for blocking threads."""
        with self.connection_sync() as conn:
            return list(conn.execute(self._statement(sql), params).all())

    def fetch_one_sync(self, sql: Any, params: Mapping[str, Any] | None = None) -> Any:
        """:meth:`fetch_one` for blocking threads."""
        with self.connection_sync() as conn:
            return conn.execute(self._statement(sql), params).first()

    def execute_sync(self, sql: Any, params: Any = None) -> int:
        """:meth:`execute` for blocking threads."""
        with self.transaction_sync() as conn:
            return conn.execute(self._statement(sql), params).rowcount


SQLAlchemyConnector = SQLConnector
