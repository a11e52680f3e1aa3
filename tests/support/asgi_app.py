"""The HTTP server of the connector tests: a bare ASGI app served by uvicorn.

Every request is appended as one line to ``BLAZING_TEST_HTTP_LOG``: the server's
``time.monotonic()`` (one clock for every process of the machine), the client's port
(one TCP connection each), the ``X-Client-Pid`` header, the path, and the
``Authorization`` header's scheme. Routes:

- ``/ping``: 200 ``pong``.
- ``/flaky/<key>?fail=N&status=S&retry_after=R``: status S (with ``Retry-After: R`` if
  given) for the first N requests of that key, then 200 with the attempt number.
- ``/slow?ms=N``: 200 after N ms.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qs

_attempts: Counter[str] = Counter()


def _record(scope: dict[str, Any], headers: dict[bytes, bytes]) -> None:
    path = os.environ.get("BLAZING_TEST_HTTP_LOG")
    if not path:
        return
    client = scope.get("client") or ("?", 0)
    pid = headers.get(b"x-client-pid", b"-").decode()
    auth = headers.get(b"authorization", b"-").split(b" ")[0].decode() or "-"
    line = f"{time.monotonic():.6f} {client[1]} {pid} {scope['path']} {auth}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI entry point."""
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    headers = dict(scope.get("headers") or [])
    _record(scope, headers)
    query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
    path = scope["path"]
    status, body, extra = 200, b"pong", []
    if path.startswith("/flaky/"):
        key = path[len("/flaky/"):]
        _attempts[key] += 1
        n = _attempts[key]
        if n <= int(query.get("fail", "0")):
            status, body = int(query.get("status", "503")), b"try again"
            if "retry_after" in query:
                extra.append((b"retry-after", query["retry_after"].encode()))
        else:
            body = str(n).encode()
    elif path == "/slow":
        await asyncio.sleep(int(query.get("ms", "0")) / 1000)  # the latency under test
        body = b"slow"
    elif path != "/ping":
        status, body = 404, b"no such route"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})
