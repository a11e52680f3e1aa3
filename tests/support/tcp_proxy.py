"""A TCP proxy a test controls, to put a network partition between a process and Redis.

``cut()`` black-holes the link: bytes already sent and bytes sent meanwhile are
held, in both directions, and new connections are accepted but not forwarded,
so the far side sees what a partition looks like (time-outs), not resets.
``restore()`` lets everything held go on, late, as when a partition heals;
``reset()`` drops every connection with a TCP reset instead. One thread per
direction of each connection; ``close()`` stops them all.
"""

from __future__ import annotations

import socket
import struct
import threading

from tests.support.redis_server import free_port


def _abort(sock: socket.socket) -> None:
    """Close ``sock`` with a reset (SO_LINGER 0) rather than an orderly FIN.

    SHUT_RD first wakes a thread blocked in recv() on it without sending
    anything; close() alone would not wake it, and the reset goes out once
    the last reference to the socket is gone.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    sock.close()


class _Link:
    """One proxied connection: the client's socket and ours to the target.

    Each direction's thread calls :meth:`done` when it stops; the second one
    closes both sockets, so a finished connection holds no file descriptors.
    """

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self._pipes_left = 2
        self._aborted = False
        self._lock = threading.Lock()

    def shutdown(self) -> None:
        """Wake both directions' threads (EOF on their recv)."""
        for s in (self.client, self.upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def done(self) -> bool:
        """Called by a direction that stopped; True when it was the last one."""
        with self._lock:
            aborted = self._aborted
        if not aborted:  # an orderly shutdown would send the FIN an abort must not
            self.shutdown()
        with self._lock:
            self._pipes_left -= 1
            last = self._pipes_left == 0
        if last:
            self.client.close()
            self.upstream.close()
        return last

    def abort(self) -> None:
        """Reset both sides (the threads then see errors and stop)."""
        with self._lock:
            self._aborted = True
        _abort(self.client)
        _abort(self.upstream)


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target`` until closed.

    ``accepted`` counts connections forwarded so far, ``open`` those still open.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # notified when _links changes
        self._links: set[_Link] = set()
        self._threads: list[threading.Thread] = []
        self.accepted = 0
        self._listener = socket.create_server(("127.0.0.1", self.port), backlog=128)
        self._spawn(self._accept)

    @property
    def url(self) -> str:
        """A redis:// URL that goes through the proxy."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def open(self) -> int:
        """Connections being forwarded (or held) right now."""
        with self._lock:
            return len(self._links)

    def wait_open(self, count: int, timeout: float = 10.0) -> None:
        """Wait (bounded) until exactly ``count`` connections are open."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._links) == count, timeout):
                raise TimeoutError(f"{len(self._links)} connections open, not {count}, "
                                   f"after {timeout} s")

    def _spawn(self, target, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            # While cut: connected (the kernel finished the handshake) but
            # nothing goes through, and later connections wait in the backlog.
            self._flowing.wait()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _abort(client)  # the target is down: the client sees a reset
                continue
            upstream.settimeout(None)
            link = _Link(client, upstream)
            with self._lock:
                if self._closed.is_set():  # close() ran meanwhile: it will not see this one
                    link.abort()
                    return
                self._links.add(link)
                self.accepted += 1
                self._changed.notify_all()
            self._spawn(self._pipe, link, client, upstream)
            self._spawn(self._pipe, link, upstream, client)

    def _pipe(self, link: _Link, src: socket.socket, dst: socket.socket) -> None:
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
        if link.done():
            with self._lock:
                self._links.discard(link)
                self._changed.notify_all()

    def cut(self) -> None:
        """Stop forwarding (a partition): nothing passes until restore()."""
        self._flowing.clear()

    def restore(self) -> None:
        """Forward again, including everything held during the cut."""
        self._flowing.set()

    def reset(self) -> None:
        """Drop every open connection with a TCP reset (the far sides see ECONNRESET)."""
        with self._lock:
            links, self._links = self._links, set()
            self._changed.notify_all()
        for link in links:
            link.abort()

    def close(self) -> None:
        """Stop the proxy and every thread it started (bounded)."""
        with self._lock:
            self._closed.set()
        self._flowing.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (Linux)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            links, self._links = self._links, set()
        for link in links:
            link.shutdown()  # an orderly end: the pipes see EOF and close their sockets
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
