"""A real redis-server on a free loopback port, for the length of a test or session.

It can also speak only TLS (with the certificates of :func:`make_certs`), require a
client certificate, and require a password.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.sockets import require_servers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Certs:
    """PEM files of a throwaway PKI: a CA, a server and a client it signed, and a stranger.

    The server certificate is for 127.0.0.1 and localhost; ``other_*`` are a second,
    unrelated CA and a client certificate it signed.
    """

    dir: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    other_client_cert: Path
    other_client_key: Path


def make_certs(directory: Path) -> Certs:
    """Make a CA, a server and a client certificate in ``directory`` (needs the openssl CLI).

    Raises RuntimeError when openssl is missing or fails. Keys are P-256, valid one day.
    """
    exe = shutil.which("openssl")
    if exe is None:
        raise RuntimeError("the openssl command is not installed (apt-get install openssl)")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        out = subprocess.run([exe, *args], capture_output=True, timeout=60, cwd=d)
        if out.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)}: {out.stderr.decode(errors='replace')}")

    def ca(name: str) -> None:
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "1",
            "-subj", f"/CN=blazing test {name}")

    def leaf(name: str, ca_name: str, extensions: str) -> None:
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        (d / f"{name}.ext").write_text(extensions)
        run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca_name}.crt", "-CAkey",
            f"{ca_name}.key", "-CAcreateserial", "-out", f"{name}.crt", "-days", "1",
            "-extfile", f"{name}.ext")

    ca("ca")
    ca("other-ca")
    leaf("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                         "extendedKeyUsage=serverAuth\n")
    leaf("client", "ca", "extendedKeyUsage=clientAuth\n")
    leaf("other-client", "other-ca", "extendedKeyUsage=clientAuth\n")
    return Certs(dir=d, ca=d / "ca.crt", server_cert=d / "server.crt", server_key=d / "server.key",
                 client_cert=d / "client.crt", client_key=d / "client.key",
                 other_ca=d / "other-ca.crt", other_client_cert=d / "other-client.crt",
                 other_client_key=d / "other-client.key")


class RedisServer:
    """Starts, restarts and stops one redis-server child process.

    With ``tls`` it listens only for TLS (``--port 0 --tls-port``) and, unless
    ``auth_clients`` is false, requires a client certificate signed by ``tls.ca``;
    with ``requirepass`` it requires that password.
    """

    def __init__(self, *, appendonly: bool = False, appendfsync: str = "always",
                 tls: Certs | None = None, auth_clients: bool = True,
                 requirepass: str | None = None, extra: tuple[str, ...] = ()) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.exe = exe
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="blazing-redis-"))
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.extra = extra
        self.tls = tls
        self.auth_clients = auth_clients
        self.requirepass = requirepass
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis:// (rediss:// with TLS) URL of the server, without credentials or TLS options."""
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def _args(self) -> list[str]:
        args = [self.exe, "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--save", "", "--daemonize", "no", "--logfile", str(self.dir / "redis.log")]
        if self.tls:
            args += ["--port", "0", "--tls-port", str(self.port),
                     "--tls-cert-file", str(self.tls.server_cert),
                     "--tls-key-file", str(self.tls.server_key),
                     "--tls-ca-cert-file", str(self.tls.ca),
                     "--tls-auth-clients", "yes" if self.auth_clients else "no"]
        else:
            args += ["--port", str(self.port)]
        if self.requirepass is not None:
            args += ["--requirepass", self.requirepass]
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", self.appendfsync]
        else:
            args += ["--appendonly", "no"]
        return args + list(self.extra)

    def _ping(self) -> bool:
        """One PING over a fresh connection; an answer (even NOAUTH) means it is up."""
        conn = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
        if self.tls:
            ctx = ssl.create_default_context(cafile=str(self.tls.ca))
            ctx.load_cert_chain(str(self.tls.client_cert), str(self.tls.client_key))
            conn = ctx.wrap_socket(conn, server_hostname="127.0.0.1")  # takes over conn
        with conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith((b"+PONG", b"-NOAUTH"))

    def _log(self) -> str:
        parts = [f.read_text(errors="replace") for f in (self.dir / "stderr.log",
                                                         self.dir / "redis.log") if f.exists()]
        return "\n".join(p for p in parts if p.strip()) or "(no output)"

    def start(self) -> None:
        """Start the server and wait (bounded) until it answers."""
        with open(self.dir / "stderr.log", "wb") as err:
            # Errors in the command line (an unknown --tls-port in a build without
            # TLS) go to stderr, before the log file is opened.
            self.proc = subprocess.Popen(self._args(), stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self._log()}")
            try:
                if self._ping():
                    return
            except OSError:  # ssl.SSLError is an OSError
                pass
            time.sleep(0.02)  # polling a starting server: there is no event to wait on
        raise RuntimeError(f"redis-server on port {self.port} did not answer within 10 s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL the server, as a crash or the OOM killer would: no shutdown save."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port and data directory."""
        self.stop()
        self.start()

    def cli(self, *args: str) -> str:
        """Run redis-cli against the server and return its output."""
        conn = ["-p", str(self.port)]
        if self.tls:
            conn += ["--tls", "--cacert", str(self.tls.ca), "--cert", str(self.tls.client_cert),
                     "--key", str(self.tls.client_key)]
        if self.requirepass is not None:
            conn += ["-a", self.requirepass, "--no-auth-warning"]
        out = subprocess.run(["redis-cli", *conn, *args], capture_output=True,
                             timeout=30, check=True)
        return out.stdout.decode("utf-8", "replace").strip()

    def close(self) -> None:
        """Stop and remove the data directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def require_redis() -> bool:
    """Whether a missing redis-server must fail (CI) rather than skip: the switches every
    server the tests need honours (see tests.support.sockets.require_servers)."""
    return require_servers()
