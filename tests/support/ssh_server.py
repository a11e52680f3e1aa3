"""A real OpenSSH server (Debian's ``openssh-server``) on a free loopback port.

What works on Debian 12: ``/usr/sbin/sshd -D -e -f <config>`` (sshd needs its
absolute path) with a host key and an ``AuthorizedKeysFile`` holding a user key, both
generated here by ``ssh-keygen``; ``StrictModes no`` (the files sit in a temp dir);
``UsePAM no`` (no PAM session for a throwaway server). Run as root, as the tests are in
CI, it accepts the key for root (``PermitRootLogin prohibit-password``); run as
another user it can only log in that same user, which is what the tests do: they log
in as whoever runs them. sshd refuses to start without its privilege separation
directory ``/run/sshd``, which a fresh container lacks: as root it is made here.

``LogLevel VERBOSE`` writes, per connection, ``Accepted publickey ...`` and, per
command or SFTP channel, ``Starting session: ...``; a client that closes properly
sends SSH_MSG_DISCONNECT, logged as ``Received disconnect``, while one that just
vanishes is logged ``Connection closed by`` or ``Connection reset``.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.redis_server import free_port
from tests.support.sockets import descendants

SSHD = "/usr/sbin/sshd"


class SSHServer:
    """Starts, restarts and stops one sshd with generated keys."""

    def __init__(self) -> None:
        if not os.path.exists(SSHD):
            raise RuntimeError("sshd is not installed (apt-get install openssh-server)")
        if shutil.which("ssh-keygen") is None:
            raise RuntimeError("ssh-keygen is not installed (apt-get install openssh-client)")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="blazing-sshd-"))
        self.user = getpass.getuser()
        self.host_key = self.dir / "host_key"
        self.user_key = self.dir / "user_key"
        self.known_hosts = self.dir / "known_hosts"
        self.log = self.dir / "sshd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._keys()

    def _keys(self) -> None:
        for key in (self.host_key, self.user_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                           check=True, capture_output=True, timeout=30)
        (self.dir / "authorized_keys").write_text(self.user_key.with_suffix(".pub").read_text())
        kind, key = self.host_key.with_suffix(".pub").read_text().split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {kind} {key}\n")
        (self.dir / "sshd_config").write_text("\n".join([
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"PidFile {self.dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
            "StrictModes no",
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
            "MaxSessions 10",
            "MaxStartups 200",
            # Bash sources ~/.bashrc for a command run by sshd only in a top-level
            # shell (SHLVL unset): the user's rc (pyenv init, say) stays out of the tests.
            "SetEnv SHLVL=1",
            "",
        ]))

    def start(self) -> None:
        """Start sshd and wait (bounded) until it listens."""
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        listening = self.log_count("Server listening")  # the log outlives restarts
        log = open(self.log, "ab")  # noqa: SIM115 - the child holds it; closed below
        try:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.dir / "sshd_config")],
                                         stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        finally:
            log.close()
        deadline = time.monotonic() + 10
        while self.log_count("Server listening") == listening:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not listen within 10 s: {self.log_text()}")
            time.sleep(0.02)  # polling a starting server's log: no event to wait on

    def stop(self) -> None:
        """Kill the listener and every connection's process: clients see the link drop."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # Connection processes call setsid(): find them before the listener goes.
            children = descendants(self.proc.pid)
            self.proc.send_signal(signal.SIGKILL)
            for pid in children:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        """Drop everything and listen again on the same port with the same keys."""
        self.stop()
        self.start()

    def log_text(self) -> str:
        """sshd's log so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_count(self, needle: str) -> int:
        """Log lines containing ``needle``."""
        return sum(1 for line in self.log_text().splitlines() if needle in line)

    def close(self) -> None:
        """Stop and remove the temp dir."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SSHServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
