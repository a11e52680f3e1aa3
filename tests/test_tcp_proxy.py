"""The test TCP proxy itself, against a real redis-server."""

from __future__ import annotations

import socket

import pytest

from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(30)


def ping(conn: socket.socket) -> bytes:
    conn.sendall(b"PING\r\n")
    return conn.recv(16)


def test_forwards_cuts_and_restores(redis_server):
    with TcpProxy(redis_server.port) as proxy:
        conn = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        assert ping(conn) == b"+PONG\r\n"
        proxy.cut()
        conn.settimeout(0.3)
        with pytest.raises(TimeoutError):
            ping(conn)  # a partition: no answer, no reset
        fresh = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        fresh.settimeout(0.3)
        with pytest.raises(TimeoutError):
            ping(fresh)  # new connections are taken but not forwarded
        proxy.restore()
        conn.settimeout(5)
        assert conn.recv(16) == b"+PONG\r\n", "what was held during the cut arrives"
        fresh.settimeout(5)
        assert fresh.recv(16) == b"+PONG\r\n"
        assert ping(conn) == b"+PONG\r\n"
        proxy.reset()
        assert conn.recv(16) == b"", "reset drops the connection"
        assert proxy.accepted == 2
