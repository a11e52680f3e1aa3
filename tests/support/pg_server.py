"""A real PostgreSQL server in a temp dir on a free loopback port, for a test session.

PostgreSQL refuses to run as root (initdb and postgres both check), and tests run as
root in CI. As root, the cluster is made and run by the unprivileged ``nobody`` user
through ``runuser -u nobody --`` (util-linux, on every Debian), in a temp dir handed
to nobody; as any other user it runs as that user. The binaries are Debian's
(``/usr/lib/postgresql/<version>/bin``, from the ``postgresql`` package), or
whatever ``pg_config --bindir`` or the PATH names.

The cluster logs every connection and disconnection with the client's
``application_name`` (the connectors put their pid in it), and, at DEBUG1, an
``unexpected EOF on client connection`` for a client that went without saying
goodbye: so a test can count, on the server's side, the connections each worker
process opened and whether it closed them properly.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.redis_server import free_port

USER = "blazing"
PASSWORD = "pg-test-secret-4b1d"  # scanned for in Redis and logs by the secrets test


def bindir() -> Path:
    """The directory of initdb and pg_ctl; RuntimeError if PostgreSQL is not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and (Path(out.stdout.strip()) / "initdb").exists():
            return Path(out.stdout.strip())
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")


class PostgresServer:
    """initdb, start, restart, stop and query one PostgreSQL cluster."""

    def __init__(self) -> None:
        self.bin = bindir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="blazing-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "nobody", "nogroup")

    def url(self, driver: str = "postgresql+asyncpg", password: str = PASSWORD) -> str:
        """A URL for the test database, with the password."""
        return f"{driver}://{USER}:{password}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> str:
        cmd = ["runuser", "-u", "nobody", "--", *args] if self.as_root else list(args)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                             cwd=self.dir)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {out.stdout}{out.stderr}\n{self.log_text()}")
        return out.stdout

    def init(self) -> None:
        """Make the cluster: password auth for everyone, over TCP only."""
        pwfile = self.dir / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.as_root:
            shutil.chown(pwfile, "nobody", "nogroup")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", USER,
                  "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8",
                  "--no-sync", "--no-instructions")
        pwfile.unlink()

    def start(self) -> None:
        """Start (and wait until it accepts connections)."""
        options = " ".join([
            f"-p {self.port}", f"-k {self.dir}", "-c listen_addresses=127.0.0.1",
            "-c max_connections=200", "-c fsync=off", "-c log_connections=on",
            "-c log_disconnections=on", "-c log_min_messages=debug1",
            "-c log_line_prefix='%m [%p] app=%a '",
        ])
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop (``fast`` ends every session; the clients see their connections drop)."""
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                      "-t", "60", "stop")

    def restart(self) -> None:
        """Stop (fast) and start again on the same port."""
        self.stop()
        self.start()

    def psql(self, sql: str) -> str:
        """Run SQL as the superuser over the Unix socket; the unaligned output."""
        psql = self.bin / "psql"
        exe = str(psql) if psql.exists() else (shutil.which("psql") or "psql")
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        out = subprocess.run([exe, "-h", "127.0.0.1", "-p", str(self.port), "-U", USER,
                              "-d", "postgres", "-XAtq", "-c", sql], capture_output=True,
                             text=True, timeout=30, env=env)
        if out.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {out.stderr}")
        return out.stdout.strip()

    def sessions(self, prefix: str = "blazing:") -> dict[str, int]:
        """Open client sessions by application_name (those starting with ``prefix``)."""
        rows = self.psql("SELECT application_name, count(*) FROM pg_stat_activity "
                         f"WHERE application_name LIKE '{prefix}%' GROUP BY 1")
        return {name: int(n) for name, n in (r.split("|") for r in rows.splitlines() if r)}

    def log_text(self) -> str:
        """The server log so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_count(self, needle: str, app: str | None = None) -> int:
        """Log lines containing ``needle`` (of the client ``app``, if given)."""
        def of_app(line: str) -> bool:
            # The prefix names the client's application once its session is set up;
            # the "connection authorized" line, written before, names it at its end.
            return (app is None or f"app={app} " in line
                    or line.endswith(f"application_name={app}"))

        return sum(1 for line in self.log_text().splitlines() if needle in line and of_app(line))

    def close(self) -> None:
        """Stop and remove the cluster."""
        try:
            self.stop("immediate")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_sessions(server: PostgresServer, predicate, timeout: float = 30.0) -> dict[str, int]:
    """Poll pg_stat_activity (bounded) until ``predicate(sessions)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        now = server.sessions()
        if predicate(now):
            return now
        if time.monotonic() > deadline:
            raise TimeoutError(f"pg_stat_activity after {timeout} s: {now}")
        time.sleep(0.05)  # polling another process's count: no event to wait on
