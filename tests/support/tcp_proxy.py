"""A TCP proxy a test controls, to put a network partition between a process and Redis.

``cut()`` black-holes the link: bytes already sent and bytes sent meanwhile are
held, in both directions, and new connections are accepted but not forwarded,
so the far side sees what a partition looks like (time-outs), not resets.
``restore()`` lets everything held go on, late, as when a partition heals;
``reset()`` drops every connection instead. One thread per direction of each
connection; ``close()`` stops them all.
"""

from __future__ import annotations

import socket
import threading

from tests.support.redis_server import free_port


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target`` until closed."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.accepted = 0
        self._listener = socket.create_server(("127.0.0.1", self.port), backlog=128)
        self._spawn(self._accept)

    @property
    def url(self) -> str:
        """A redis:// URL that goes through the proxy."""
        return f"redis://127.0.0.1:{self.port}/0"

    def _spawn(self, target, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            self._flowing.wait()  # while cut: connected, but nothing goes through
            if self._closed.is_set():
                client.close()
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
                self.accepted += 1
            self._spawn(self._pipe, client, upstream)
            self._spawn(self._pipe, upstream, client)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self._flowing.wait()  # held while cut: a black hole, not a reset
                if self._closed.is_set():
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        """Stop forwarding (a partition): nothing passes until restore()."""
        self._flowing.clear()

    def restore(self) -> None:
        """Forward again, including everything held during the cut."""
        self._flowing.set()

    def reset(self) -> None:
        """Drop every open connection (the far sides see resets or EOF)."""
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        """Stop the proxy and every thread it started (bounded)."""
        self._closed.set()
        self._flowing.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (Linux)
        except OSError:
            pass
        self._listener.close()
        self.reset()
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
