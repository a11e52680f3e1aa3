"""A program in a real terminal: tmux runs it detached at a given size; the test types
keys into it and reads the screen back (capture-pane).

Each :class:`Tmux` has a tmux server of its own (a private socket), so tests never
touch a user's sessions, and closing it ends everything it started.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable

import pytest

from tests.support.sockets import require_servers


def need_tmux() -> str:
    """The tmux binary; the test is skipped without it, except under CI (which installs it)."""
    exe = shutil.which("tmux")
    if exe is None:
        if require_servers():
            raise RuntimeError("tmux is not installed (apt-get install tmux)")
        pytest.skip("tmux is not installed")
    return exe


class Tmux:
    """One command in a detached tmux session of ``width`` × ``height``. The shell line
    prints ``EXIT=<code>`` when the command ends and keeps the pane open to read it."""

    def __init__(self, argv: list[str], width: int, height: int, env: dict[str, str],
                 cwd: str) -> None:
        self.exe = need_tmux()
        self.socket = f"blazing-test-{uuid.uuid4().hex[:10]}"
        assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        line = (f"cd {shlex.quote(cwd)} && env {assigns} {shlex.join(argv)}; "
                "echo EXIT=$?; sleep 120")
        self._tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), line)
        # Keys arrive one by one here: tmux must not hold an Esc back to join it with
        # the next key (its default waits 500 ms for that).
        self._tmux("set-option", "-s", "escape-time", "0")

    def _tmux(self, *args: str) -> str:
        out = subprocess.run([self.exe, "-L", self.socket, *args], capture_output=True,
                             text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def screen(self) -> str:
        """What the terminal shows now."""
        return self._tmux("capture-pane", "-p", "-t", "t")

    def send(self, *keys: str) -> None:
        """Type keys (tmux key names: q, Enter, Escape, j, ...)."""
        self._tmux("send-keys", "-t", "t", *keys)

    def wait_for(self, check: Callable[[str], bool], what: str, timeout: float = 30) -> str:
        """Poll the screen until ``check`` holds (bounded); the screen that passed."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if check(screen):
                return screen
            time.sleep(0.1)  # polling another process's screen: there is no event to wait on
        raise AssertionError(f"the screen never showed {what}; last screen:\n{screen}")

    def close(self) -> None:
        """End the tmux server and everything in it."""
        subprocess.run([self.exe, "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=30)
