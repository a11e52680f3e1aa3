"""The test TCP proxy itself, against a real redis-server."""

from __future__ import annotations

import socket
import threading

import pytest

from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(30)


def ping(conn: socket.socket) -> bytes:
    """Send PING and read the answer."""
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
        assert (proxy.accepted, proxy.open) == (2, 2)
        proxy.reset()
        with pytest.raises(ConnectionResetError):
            conn.recv(16)  # reset drops the connection with a TCP reset, not an EOF
        assert proxy.open == 0
        again = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        assert ping(again) == b"+PONG\r\n", "the proxy goes on after a reset"
        assert proxy.accepted == 3


def test_a_closed_connection_is_let_go(redis_server):
    with TcpProxy(redis_server.port) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as conn:
            assert ping(conn) == b"+PONG\r\n"
            assert proxy.open == 1
            conn.sendall(b"QUIT\r\n")
            assert conn.recv(16) == b"+OK\r\n"
            assert conn.recv(16) == b"", "the server's end passes through"
        proxy.wait_open(0)  # both directions stopped and closed their sockets
        assert proxy.accepted == 1


def test_close_stops_every_thread_even_while_cut(redis_server):
    before = set(threading.enumerate())
    proxy = TcpProxy(redis_server.port)
    conn = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    assert ping(conn) == b"+PONG\r\n"
    proxy.cut()
    conn.sendall(b"PING\r\n")  # held by the proxy
    pending = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)  # held too
    proxy.close()
    assert set(threading.enumerate()) <= before, "a proxy thread outlived close()"
    conn.settimeout(5)
    assert conn.recv(16) in (b"", b"+PONG\r\n")  # ended, whether or not the held PING went on
    pending.close()
    conn.close()
