"""HTTPConnector: pooled httpx clients, with retries, backoff and throttling."""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from blazing.connectors.base import Connector, backoff, check_host, redact_url, require

#: Methods retried after a failure that may have reached the server (a 5xx, a
#: dropped response): sending them twice does no harm.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class HTTPConnector(Connector):
    """An HTTP API through httpx: an ``AsyncClient`` per event loop and a ``Client`` per
    blocking thread, each keeping its connections alive between requests.

    ``base_url``, ``headers``, ``token`` (sent as ``Authorization: Bearer``), or
    ``username`` and ``password`` (basic auth). Pool: ``pool_size`` connections kept
    alive, up to ``max_overflow`` more while busy, ``pool_timeout`` seconds waiting
    for one, ``keepalive_expiry`` seconds idle before one is closed. ``timeout``
    bounds each request.

    Retries (``retries`` times, doubling ``backoff`` up to ``backoff_max``): a request
    that could not connect, and a 429, always (the server did not act on it); a 5xx
    in ``retry_statuses`` and a dropped response only for ``retry_methods`` (the
    idempotent ones by default). A ``Retry-After`` header is honoured (up to
    ``retry_after_max`` seconds). ``throttling`` limits requests per window across
    the process. ``health_path`` is requested by health checks (none: a check only
    sees that the client is open).
    """

    kind = "http"
    extra = "http"

    def __init__(self, base_url: str | None = None, *, name: str | None = None,
                 url: str | None = None, headers: Mapping[str, str] | None = None,
                 token: str | None = None, bearer_token: str | None = None,
                 username: str | None = None, password: str | None = None,
                 pool_size: int = 10, max_overflow: int = 10, pool_timeout: float = 30.0,
                 keepalive_expiry: float = 30.0, timeout: float = 30.0,
                 retries: int = 3, backoff: float = 0.1, backoff_max: float = 10.0,
                 retry_statuses: Iterable[int] = (500, 502, 503, 504),
                 retry_methods: Iterable[str] = IDEMPOTENT, retry_after_max: float = 60.0,
                 health_path: str | None = None, http2: bool = False, verify: Any = True,
                 client_options: Mapping[str, Any] | None = None, **options: Any) -> None:
        super().__init__(name=name, **options)
        base_url = base_url if base_url is not None else url
        if base_url is not None and (not isinstance(base_url, str)
                                     or urlsplit(base_url).scheme not in ("http", "https")):
            raise self.config_error(f"base_url= must be an http:// or https:// URL, "
                                    f"not {redact_url(str(base_url))!r}")
        self.base_url = base_url or ""
        self.headers = dict(headers or {})
        token = token if token is not None else bearer_token
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"
        self._basic = (username, password or "") if username is not None else None
        for opt, value in (("pool_size", pool_size), ("max_overflow", max_overflow),
                           ("retries", retries)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise self.config_error(f"{opt}= must be a non-negative int, not {value!r}")
        if pool_size < 1:
            raise self.config_error("pool_size= must be at least 1")
        self.pool_size, self.max_overflow = pool_size, max_overflow
        self.pool_timeout, self.keepalive_expiry, self.timeout = (
            pool_timeout, keepalive_expiry, timeout)
        self.retries, self.backoff, self.backoff_max = retries, backoff, backoff_max
        self.retry_statuses = frozenset(retry_statuses)
        self.retry_methods = frozenset(m.upper() for m in retry_methods)
        self.retry_after_max = retry_after_max
        self.health_path = health_path
        self.http2, self.verify = http2, verify
        self.client_options = dict(client_options or {})

    def target(self) -> str:
        return redact_url(self.base_url)

    def validate(self) -> None:
        """httpx is installed and the base URL's host resolves."""
        require("httpx", self.extra, self.name)
        if self.base_url:
            parts = urlsplit(self.base_url)
            check_host(self, parts.hostname,
                       parts.port or (443 if parts.scheme == "https" else 80))

    def _client_kwargs(self, httpx: Any) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "base_url": self.base_url,
            "headers": self.headers,
            "limits": httpx.Limits(max_connections=self.pool_size + self.max_overflow,
                                   max_keepalive_connections=self.pool_size,
                                   keepalive_expiry=self.keepalive_expiry),
            "timeout": httpx.Timeout(self.timeout, pool=self.pool_timeout),
            "verify": self.verify,
        }
        if self.http2:
            kw["http2"] = True
        if self._basic is not None:
            kw["auth"] = httpx.BasicAuth(*self._basic)
        kw.update(self.client_options)
        return kw

    def _retryable(self, exc: BaseException) -> bool:
        httpx = require("httpx", self.extra, self.name)
        return isinstance(exc, (httpx.TransportError, OSError, TimeoutError))

    async def _open(self) -> Any:
        httpx = require("httpx", self.extra, self.name)
        client = httpx.AsyncClient(**self._client_kwargs(httpx))
        if self.health_path is not None:
            try:
                await self._ping(client)
            except BaseException:
                await client.aclose()
                raise
        return client

    async def _close(self, resource: Any) -> None:
        await resource.aclose()

    async def _ping(self, resource: Any) -> None:
        if self.health_path is not None:
            resp = await resource.get(self.health_path)
            if resp.status_code >= 500:
                raise ConnectionError(f"GET {self.health_path} answered {resp.status_code}")

    def _broken(self, resource: Any) -> bool:
        return bool(resource.is_closed)

    def _open_sync(self) -> Any:
        httpx = require("httpx", self.extra, self.name)
        client = httpx.Client(**self._client_kwargs(httpx))
        if self.health_path is not None:
            try:
                self._ping_sync(client)
            except BaseException:
                client.close()
                raise
        return client

    def _close_sync(self, resource: Any) -> None:
        resource.close()

    def _ping_sync(self, resource: Any) -> None:
        if self.health_path is not None:
            resp = resource.get(self.health_path)
            if resp.status_code >= 500:
                raise ConnectionError(f"GET {self.health_path} answered {resp.status_code}")

    _broken_sync = _broken

    # ------------------------------------------------------- retry rules

    def _transport_retry(self, httpx: Any, exc: Exception, method: str) -> bool:
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return True  # nothing reached the server
        return method in self.retry_methods and isinstance(exc, httpx.TransportError)

    def _status_retry(self, status: int, method: str) -> bool:
        return status == 429 or (status in self.retry_statuses and method in self.retry_methods)

    def _retry_after(self, resp: Any) -> float | None:
        value = resp.headers.get("Retry-After")
        if not value:
            return None
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            seconds = when.timestamp() - time.time()
        if not math.isfinite(seconds):
            return None
        return min(max(0.0, seconds), self.retry_after_max)

    def _delay_after_error(self, httpx: Any, exc: Exception, method: str, attempt: int,
                           delays: Iterator[float]) -> float:
        """The backoff before trying again after a transport error; re-raises ``exc``
        when retries are spent or a retry could repeat the request's effect."""
        if attempt >= self.retries or not self._transport_retry(httpx, exc, method):
            raise exc
        return next(delays)

    def _delay_after_response(self, resp: Any, method: str, attempt: int,
                              delays: Iterator[float]) -> float | None:
        """The backoff before trying again after ``resp``, or None to return it (a status
        that is not retried, or retries spent). ``Retry-After`` is honoured."""
        if attempt >= self.retries or not self._status_retry(resp.status_code, method):
            return None
        after = self._retry_after(resp)
        return next(delays) if after is None else after

    # ---------------------------------------------------------- async use

    async def client(self) -> Any:
        """This event loop's ``httpx.AsyncClient`` (for streaming and the rest of httpx)."""
        return await self._resource()

    async def request(self, method: str, url: str, **kwargs: Any) -> Any:
        """Send a request through the pool (throttled, retried as the class says);
        return the ``httpx.Response`` (``raise_for_status()`` is the caller's choice)."""
        httpx = require("httpx", self.extra, self.name)
        method = method.upper()
        delays = backoff(self.backoff, self.backoff_max)
        attempt = 0
        while True:
            client = await self._resource()
            await self._throttled()
            try:
                resp = await client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                delay = self._delay_after_error(httpx, exc, method, attempt, delays)
            else:
                delay = self._delay_after_response(resp, method, attempt, delays)
                if delay is None:
                    return resp
                await resp.aclose()
            attempt += 1
            await asyncio.sleep(delay)  # the backoff itself

    async def get(self, url: str, **kwargs: Any) -> Any:
        """``request("GET", url, ...)``."""
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> Any:
        """``request("POST", url, ...)``."""
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> Any:
        """``request("PUT", url, ...)``."""
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> Any:
        """``request("PATCH", url, ...)``."""
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> Any:
        """``request("DELETE", url, ...)``."""
        return await self.request("DELETE", url, **kwargs)

    # ------------------------------------------------- blocking threads

    def client_sync(self) -> Any:
        """The calling thread's ``httpx.Client``."""
        return self._resource_sync()

    def request_sync(self, method: str, url: str, **kwargs: Any) -> Any:
        """:meth:`request` for blocking threads."""
        httpx = require("httpx", self.extra, self.name)
        method = method.upper()
        delays = backoff(self.backoff, self.backoff_max)
        attempt = 0
        while True:
            client = self._resource_sync()
            self._throttled_sync()
            try:
                resp = client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                delay = self._delay_after_error(httpx, exc, method, attempt, delays)
            else:
                delay = self._delay_after_response(resp, method, attempt, delays)
                if delay is None:
                    return resp
                resp.close()
            attempt += 1
            time.sleep(delay)  # the backoff itself

    def get_sync(self, url: str, **kwargs: Any) -> Any:
        """``request_sync("GET", url, ...)``."""
        return self.request_sync("GET", url, **kwargs)

    def post_sync(self, url: str, **kwargs: Any) -> Any:
        """``request_sync("POST", url, ...)``."""
        return self.request_sync("POST", url, **kwargs)

    def put_sync(self, url: str, **kwargs: Any) -> Any:
        """``request_sync("PUT", url, ...)``."""
        return self.request_sync("PUT", url, **kwargs)

    def patch_sync(self, url: str, **kwargs: Any) -> Any:
        """``request_sync("PATCH", url, ...)``."""
        return self.request_sync("PATCH", url, **kwargs)

    def delete_sync(self, url: str, **kwargs: Any) -> Any:
        """``request_sync("DELETE", url, ...)``."""
        return self.request_sync("DELETE", url, **kwargs)


RESTConnector = HTTPConnector
