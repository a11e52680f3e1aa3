"""SSHConnector: one asyncssh connection per event loop (and per blocking thread),
multiplexing commands and SFTP transfers, kept alive and reconnected when it drops."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from blazing.connectors.base import Connector, backoff, check_host, expand_path, require

_DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


@dataclass
class _Link:
    """One SSH connection, the sessions it may open at once, and its SFTP client."""

    conn: Any
    sessions: asyncio.Semaphore
    sftp: Any = None
    sftp_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class _NotStarted(Exception):
    """A command that never started because its connection had dropped: it is safe
    to run it again on a new connection."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.exc = exc


@dataclass
class _ThreadLink:
    """A blocking thread's connection, on an event loop of that thread's own."""

    loop: asyncio.AbstractEventLoop
    link: _Link


class SSHConnector(Connector):
    """A host over SSH through asyncssh.

    ``host``, ``port``, ``username``, and ``key_file`` (one path or several, with
    ``passphrase``) or ``password``. ``known_hosts`` is the file the server's key is
    checked against (``~/.ssh/known_hosts`` by default; ``None`` skips the check).
    One connection carries every command and transfer of an event loop, at most
    ``max_sessions`` at once (sshd's ``MaxSessions``, 10 by default; one is kept for
    SFTP); keepalives every ``keepalive_interval`` seconds notice a dead link, and
    the next use reconnects (with backoff). Blocking threads each get their own
    connection (``run_sync``, ``put_sync``, ``get_sync``).
    """

    kind = "ssh"
    extra = "ssh"

    def __init__(self, host: str | None = None, *, name: str | None = None, port: int = 22,
                 username: str | None = None, password: str | None = None,
                 key_file: str | os.PathLike[str] | Sequence[str] | None = None,
                 passphrase: str | None = None,
                 known_hosts: str | os.PathLike[str] | None = _DEFAULT_KNOWN_HOSTS,
                 keepalive_interval: float = 15.0, keepalive_count_max: int = 3,
                 connect_timeout: float = 10.0, max_sessions: int = 10,
                 pool_size: int | None = None, health_command: str | None = "true",
                 connect_options: Mapping[str, Any] | None = None, **options: Any) -> None:
        super().__init__(name=name, **options)
        if not host or not isinstance(host, str):
            raise self.config_error("needs host=")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise self.config_error(f"port= must be a TCP port, not {port!r}")
        self.host, self.port, self.username = host, port, username
        self._password, self._passphrase = password, passphrase
        if key_file is None:
            self.key_files: list[str] = []
        elif isinstance(key_file, (str, os.PathLike)):
            self.key_files = [expand_path(key_file)]
        else:
            self.key_files = [expand_path(k) for k in key_file]
        self.known_hosts = None if known_hosts is None else expand_path(known_hosts)
        self._known_hosts_given = known_hosts != _DEFAULT_KNOWN_HOSTS
        self.keepalive_interval, self.keepalive_count_max = keepalive_interval, keepalive_count_max
        self.connect_timeout = connect_timeout
        if pool_size is not None:  # the dict form's pool size: sessions over the connection
            max_sessions = pool_size
        if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 2:
            raise self.config_error(f"max_sessions= must be an int of at least 2 (one is kept "
                                    f"for SFTP), not {max_sessions!r}")
        self.max_sessions = max_sessions
        self.health_command = health_command
        self.connect_options = dict(connect_options or {})

    def target(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"ssh://{user}{self.host}:{self.port}"

    def validate(self) -> None:
        """asyncssh is installed, key and known_hosts files exist, the host resolves."""
        require("asyncssh", self.extra, self.name)
        for key in self.key_files:
            if not os.path.isfile(key):
                raise self.config_error(f"key file {key!r} does not exist")
            if not os.access(key, os.R_OK):
                raise self.config_error(f"key file {key!r} cannot be read")
        if self.known_hosts is not None and not os.path.isfile(self.known_hosts):
            hint = "" if self._known_hosts_given else " (the default)"
            raise self.config_error(
                f"known_hosts file {self.known_hosts!r}{hint} does not exist: pass "
                "known_hosts= a file listing the server's key, or known_hosts=None to "
                "skip host key checks")
        check_host(self, self.host, self.port)

    def _retryable(self, exc: BaseException) -> bool:
        asyncssh = require("asyncssh", self.extra, self.name)
        if isinstance(exc, asyncssh.PermissionDenied):
            return False  # the credentials are wrong: waiting will not change them
        return isinstance(exc, (OSError, TimeoutError, asyncio.TimeoutError,
                                asyncssh.DisconnectError, asyncssh.ConnectionLost))

    async def _open(self) -> _Link:
        asyncssh = require("asyncssh", self.extra, self.name)
        kw: dict[str, Any] = {
            "port": self.port,
            "known_hosts": self.known_hosts,
            "keepalive_interval": self.keepalive_interval,
            "keepalive_count_max": self.keepalive_count_max,
            "connect_timeout": self.connect_timeout,
        }
        if self.username is not None:
            kw["username"] = self.username
        if self._password is not None:
            kw["password"] = self._password
        if self.key_files:
            kw["client_keys"] = self.key_files
            if self._passphrase is not None:
                kw["passphrase"] = self._passphrase
        kw.update(self.connect_options)
        conn = await asyncssh.connect(self.host, **kw)
        # One session stays free for the SFTP client.
        return _Link(conn, asyncio.Semaphore(self.max_sessions - 1))

    async def _close(self, resource: _Link) -> None:
        if resource.sftp is not None:
            resource.sftp.exit()
        resource.conn.close()
        await resource.conn.wait_closed()

    async def _ping(self, resource: _Link) -> None:
        if resource.conn.is_closed():
            raise ConnectionError("the SSH connection is closed")
        if self.health_command:
            async with resource.sessions:
                await resource.conn.run(self.health_command, check=True)

    def _broken(self, resource: _Link) -> bool:
        return bool(resource.conn.is_closed())

    def _open_sync(self) -> _ThreadLink:
        loop = asyncio.new_event_loop()
        try:
            return _ThreadLink(loop, loop.run_until_complete(self._open()))
        except BaseException:
            loop.close()
            raise

    def _close_sync(self, resource: _ThreadLink) -> None:
        try:
            resource.loop.run_until_complete(self._close(resource.link))
        finally:
            resource.loop.close()

    def _ping_sync(self, resource: _ThreadLink) -> None:
        resource.loop.run_until_complete(self._ping(resource.link))

    def _broken_sync(self, resource: _ThreadLink) -> bool:
        return self._broken(resource.link)

    # ---------------------------------------------------------- async use

    async def connection(self) -> Any:
        """This event loop's ``asyncssh.SSHClientConnection`` (connecting if needed)."""
        return (await self._resource()).conn

    async def _run(self, link: _Link, command: str, check: bool, timeout: float | None,
                   kwargs: dict[str, Any]) -> Any:
        asyncssh = require("asyncssh", self.extra, self.name)
        async with link.sessions:
            process = await self._start(asyncssh, link, command, kwargs)
            try:
                done = await process.wait(check, timeout)
                if done.exit_status is None and done.exit_signal is None:
                    # asyncssh returns quietly when the link drops under a command.
                    raise asyncssh.ConnectionLost(
                        f"{self.describe()}: the connection dropped while {command!r} ran "
                        "(it may or may not have finished)")
                return done
            finally:
                # The session counts against sshd's MaxSessions until both ends
                # have closed the channel: hold its place until then.
                process.close()
                await process.wait_closed()

    async def _start(self, asyncssh: Any, link: _Link, command: str,
                     kwargs: dict[str, Any]) -> Any:
        """Open a session and start the command in it.

        sshd frees a session's place in ``MaxSessions`` a moment after the channel
        has closed, so a refusal to open one on a live connection is tried again
        (shortly, with backoff): the command has not started, so this is safe.
        A link that dropped before the channel opened (asyncssh says so with a
        ``ChannelOpenError``) did not start it either; one that dropped after the
        command was sent may have started it, so that one is not run again here.
        """
        if link.conn.is_closed():
            raise _NotStarted(ConnectionError(f"{self.describe()}: the connection is closed"))
        deadline = time.monotonic() + self.reconnect_timeout
        delays = backoff(0.01, 0.5)
        while True:
            try:
                return await link.conn.create_process(command, **kwargs)
            except (asyncssh.ChannelOpenError, asyncssh.ConnectionLost,
                    asyncssh.DisconnectError, OSError) as exc:
                if link.conn.is_closed():
                    if isinstance(exc, asyncssh.ChannelOpenError):
                        raise _NotStarted(exc) from exc
                    raise
                delay = next(delays)
                if (not isinstance(exc, asyncssh.ChannelOpenError)
                        or time.monotonic() + delay > deadline):
                    raise
            await asyncio.sleep(delay)  # the backoff itself

    async def run(self, command: str, *, check: bool = False, timeout: float | None = None,
                  **kwargs: Any) -> Any:
        """Run a command on the shared connection; return asyncssh's
        ``SSHCompletedProcess`` (``exit_status``, ``stdout``, ``stderr``). ``check=True``
        raises ``asyncssh.ProcessError`` on a non-zero exit.

        A command that could not start because the link had dropped is started again
        on a new connection; one that started and lost its link raises (a step's
        ``retries=`` decides whether to run it again).
        """
        await self._throttled()
        link = await self._resource()
        try:
            return await self._run(link, command, check, timeout, kwargs)
        except _NotStarted:
            link = await self._resource()  # the dropped link is replaced (with backoff)
        try:
            return await self._run(link, command, check, timeout, kwargs)
        except _NotStarted as again:
            raise again.exc from None

    async def _sftp_of(self, link: _Link) -> Any:
        async with link.sftp_lock:
            if link.sftp is None:
                link.sftp = await link.conn.start_sftp_client()
            return link.sftp

    @asynccontextmanager
    async def sftp(self) -> AsyncIterator[Any]:
        """The shared ``asyncssh.SFTPClient`` of this loop's connection."""
        link = await self._resource()
        yield await self._sftp_of(link)

    async def put(self, local: str | os.PathLike[str], remote: str, **kwargs: Any) -> None:
        """Upload a file over SFTP on the shared connection."""
        link = await self._resource()
        await self._throttled()
        await (await self._sftp_of(link)).put(os.fspath(local), remote, **kwargs)

    async def get(self, remote: str, local: str | os.PathLike[str], **kwargs: Any) -> None:
        """Download a file over SFTP on the shared connection."""
        link = await self._resource()
        await self._throttled()
        await (await self._sftp_of(link)).get(remote, os.fspath(local), **kwargs)

    # ------------------------------------------------- blocking threads

    def run_sync(self, command: str, *, check: bool = False, timeout: float | None = None,
                 **kwargs: Any) -> Any:
        """:meth:`run` on the calling thread's own connection."""
        self._throttled_sync()
        tl = self._resource_sync()
        try:
            return tl.loop.run_until_complete(self._run(tl.link, command, check, timeout, kwargs))
        except _NotStarted:
            tl = self._resource_sync()  # the dropped link is replaced (with backoff)
        try:
            return tl.loop.run_until_complete(self._run(tl.link, command, check, timeout, kwargs))
        except _NotStarted as again:
            raise again.exc from None

    def put_sync(self, local: str | os.PathLike[str], remote: str, **kwargs: Any) -> None:
        """:meth:`put` on the calling thread's own connection."""
        tl = self._resource_sync()
        self._throttled_sync()

        async def put() -> None:
            await (await self._sftp_of(tl.link)).put(os.fspath(local), remote, **kwargs)

        tl.loop.run_until_complete(put())

    def get_sync(self, remote: str, local: str | os.PathLike[str], **kwargs: Any) -> None:
        """:meth:`get` on the calling thread's own connection."""
        tl = self._resource_sync()
        self._throttled_sync()

        async def get() -> None:
            await (await self._sftp_of(tl.link)).get(remote, os.fspath(local), **kwargs)

        tl.loop.run_until_complete(get())
