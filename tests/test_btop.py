"""btop against a known load on a real redis-server with a real foreman and workers:
runs queued on a lane no worker serves, runs that failed. The frame's numbers
(``--once``, text and JSON), the Textual app driven headless by its pilot, the
dashboard in a real terminal (tmux), and bad input."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.apps.durable import DurableError, make_app
from tests.support.foreman import Foreman
from tests.support.redis_server import free_port
from tests.support.tmux import Tmux
from tests.support.workers import ROOT

pytestmark = pytest.mark.timeout(120)
SECRET = "btop-secret"
QUEUED = 23  # burn runs queued on the blocking lane, which has no worker
FAILED = 4  # runs of fail_importable, each failing on its only attempt
SUCCEEDED = 6  # three_incs runs: 6 workflows + 18 steps succeed on the async lane


@dataclass
class Load:
    url: str
    ns: str
    failed: list[str]  # unit ids, oldest first

    @property
    def env(self) -> dict[str, str]:
        return {"BLAZING_REDIS_URL": self.url, "BLAZING_NAMESPACE": self.ns}


def btop(env: dict[str, str], *args: str, module: str = "blazing.cli",
         columns: int = 100) -> subprocess.CompletedProcess[str]:
    """Run btop (through the console script's module, or its ``python -m`` twin)."""
    argv = [sys.executable, "-m", module, *(["btop"] if module == "blazing.cli" else []), *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": str(columns), **env})


@pytest.fixture(scope="module")
def load(redis_server) -> Iterator[Load]:
    """A foreman with one async worker and no blocking one (the optimizer records but
    does not move), QUEUED runs waiting on the blocking lane, FAILED failed runs and
    SUCCEEDED successful ones."""
    ns = "btop" + uuid.uuid4().hex[:8]
    fm = Foreman("--redis-url", redis_server.url, "--namespace", ns,
                 "--app", "tests.apps.durable:app", "--metrics-addr", "",
                 "--async-workers", "1", "--blocking-workers", "0", "--min-blocking", "0",
                 "--no-auto-optimize", "--optimization-interval", "1", secret=SECRET)
    client = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                      secret=SECRET)
    try:
        fm.expect(r"started worker.*lane=async")
        for _ in range(QUEUED):
            client.burn(1)
        failed = []
        for i in range(FAILED):
            handle = client.fail_importable(f"boom {i}")
            with pytest.raises(DurableError):
                handle.result_sync(timeout=30)
            failed.append(handle.unit_id)
        assert [client.three_incs(i).result_sync(timeout=30) for i in range(SUCCEEDED)] == \
            [i + 3 for i in range(SUCCEEDED)]
        yield Load(redis_server.url, ns, failed)
    finally:
        client.stop_sync()
        fm.close()


def frame_when(load: Load, check, what: str, timeout: float = 30) -> dict:
    """``btop --once -o json`` read until ``check`` holds: the foreman beats every 2 s
    and its workers report their counts on their own beat."""
    deadline = time.monotonic() + timeout
    frame: dict = {}
    while time.monotonic() < deadline:
        out = btop(load.env, "--once", "-o", "json")
        assert out.returncode == 0, out.stderr
        frame = json.loads(out.stdout)
        if check(frame):
            return frame
        time.sleep(0.5)  # the next beat is another process's: read again
    raise AssertionError(f"no frame showed {what}; last: {json.dumps(frame, indent=1)}")


def test_once_shows_the_depth_failures_machines_and_decisions_of_a_known_load(load: Load):
    def lane(f: dict, name: str) -> dict:
        return next(r for r in f["lanes"] if r["name"] == name)

    # FAILED of the FAILED + SUCCEEDED * 4 attempts that ended on the async lane. The
    # worker reports its counts on its beat, so the first samples may hold only some
    # of them; the rate is read until it is in (the foreman's per-second rates weigh
    # each beat by its length, hence the tolerance).
    expected = FAILED / (FAILED + 4 * SUCCEEDED)

    def settled(f: dict) -> bool:
        rate = lane(f, "async")["error_rate"]
        return rate is not None and abs(rate - expected) < 0.02 and bool(f["decisions"]) \
            and bool(f["machines"]) and f["machines"][0]["states"]["async"].get("serving") == 1

    frame = frame_when(load, settled, f"an error rate of {expected:.3f}, a decision and the "
                       "serving worker")
    blocking, async_ = lane(frame, "blocking"), lane(frame, "async")
    assert blocking["depth"] == QUEUED and blocking["oldest_s"] > 0
    assert async_["depth"] == 0 and async_["in_flight"] == 0
    assert [f["unit_id"] for f in frame["failures"]] == load.failed[::-1], "newest first"
    assert {f["name"] for f in frame["failures"]} == {"fail_importable"}
    assert frame["failures"][0]["error_message"] == f"boom {FAILED - 1}"
    (machine,) = frame["machines"]
    assert machine["target"] == {"async": 1, "blocking": 0} and machine["restarts"] == 0
    d = frame["decisions"][0]
    assert d["applied"] is False and d["reason"] and d["before"] == {"async": 1, "blocking": 0}

    # The same frame as text, through the python -m twin.
    out = btop(load.env, "--once", module="blazing.monitoring.btop")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    row = next(ln for ln in text.splitlines() if ln.split()[:1] == ["blocking"])
    assert row.split()[1] == str(QUEUED), row
    fails = [ln for ln in text.splitlines() if "fail_importable" in ln]
    assert len(fails) == FAILED
    assert "DurableError: boom 3" in fails[0] and load.failed[-1][:12] in fails[0]
    assert "1 serving" in text and "MACHINES  1 foreman" in text
    assert "DECISIONS" in text and d["reason"] in text
    assert all(len(ln) <= 100 for ln in text.splitlines())
    # 80 columns is enough, and nothing is wider.
    out = btop(load.env, "--once", columns=80)
    assert out.returncode == 0 and max(map(len, out.stdout.splitlines())) <= 80


def test_once_filters_and_drills_into_a_run(load: Load):
    out = btop(load.env, "--once", "--filter", "three_incs")
    assert out.returncode == 0, out.stderr
    assert "no failed runs" in out.stdout and "fail_importable" not in out.stdout
    out = btop(load.env, "--once", "--filter", "IMPORTABLE")  # any case, any part
    assert out.stdout.count("fail_importable") == FAILED
    out = btop(load.env, "--once", "--run", load.failed[0])
    assert out.returncode == 0, out.stderr
    assert "fail_importable 0  [failed, 1 attempt]" in out.stdout
    assert "queued" in out.stdout and "DurableError: boom 0" in out.stdout
    assert "Traceback" in out.stdout


def test_bad_input_gets_a_clear_message_and_exit_code(load: Load):
    out = btop(load.env, "--once", "--run", "no-such-run")
    assert out.returncode == 1 and "no run 'no-such-run'" in out.stderr
    out = btop(load.env, "--once", columns=60)
    assert out.returncode == 3 and "needs at least 80×24" in out.stderr
    out = btop(load.env)  # no terminal: stdout is a pipe here
    assert out.returncode == 3 and "--once" in out.stderr
    out = btop(load.env, "--once", "--refresh", "0")
    assert out.returncode == 1 and "--refresh" in out.stderr
    out = btop({"BLAZING_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
                "BLAZING_CONNECT_TIMEOUT": "1"}, "--once")
    assert out.returncode == 1 and "does not answer" in out.stderr
    out = btop({"BLAZING_REDIS_URL": ""}, "--once")
    assert out.returncode == 1 and "--redis-url" in out.stderr


def test_the_app_driven_by_its_pilot(load: Load):
    from textual.widgets import Static

    from blazing.cli.common import inspector
    from blazing.monitoring.frame import FrameSource
    from blazing.monitoring.tui import BtopApp, DetailScreen, HelpScreen

    async def until(pilot, check, what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"the app never showed {what}"
            await pilot.pause(0.05)

    def cursor_row(app: BtopApp) -> str:
        return next(ln for ln in app.lines["failures"] if ln.startswith("> "))

    async def scenario(source: FrameSource) -> None:
        app = BtopApp(source, refresh=0.2, where=f"namespace {load.ns}")
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.frame is not None, "a frame")
            rows = [ln for ln in app.lines["failures"] if "fail_importable" in ln]
            assert len(rows) == FAILED
            assert load.failed[-1][:12] in cursor_row(app), "the cursor starts on the newest"
            blocking = next(ln for ln in app.lines["lanes"] if ln.split()[:1] == ["blocking"])
            assert blocking.split()[1] == str(QUEUED)

            await pilot.press("j", "down")  # two rows down
            assert load.failed[-3][:12] in cursor_row(app)
            await pilot.press("k")
            assert load.failed[-2][:12] in cursor_row(app)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the drill-down")
            lines = app.screen.lines
            assert lines[0] == f"run {load.failed[-2]}"
            assert any("fail_importable 0  [failed, 1 attempt]" in ln for ln in lines)
            assert any(f"DurableError: boom {FAILED - 2}" in ln for ln in lines)
            await pilot.press("escape")
            assert not isinstance(app.screen, DetailScreen)

            await pilot.press("slash", *"incs", "enter")  # a name no failed run has
            assert app.pattern == "incs" and app.frame.failures == []
            assert "filter: 'incs'" in app.lines["failures"][0]
            await pilot.press("escape")  # clears it
            assert app.pattern == "" and len(app.frame.failures) == FAILED

            await pilot.press("p")
            assert app.paused
            title = app.query_one("#title", Static)
            assert "PAUSED" in str(title.render())
            paused_at = app.frames_read
            await pilot.pause(1.0)  # five refresh periods: none may bring a frame
            assert app.frames_read == paused_at
            await pilot.press("p")
            await until(pilot, lambda: app.frames_read > paused_at, "frames again")

            await pilot.press("shift+tab")  # failures -> machines
            assert app.lines["machines"][0].startswith("» MACHINES")
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), "a machine")
            assert any("async-1" in ln and "serving" in ln for ln in app.screen.lines)
            await pilot.press("q")  # in a details view: back
            await pilot.press("tab", "tab", "enter")  # machines -> failures -> decisions
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), "a decision")
            assert any(ln.startswith("reason ") for ln in app.screen.lines)
            await pilot.press("escape")

            app.load_run("no-such-run")  # a run gone meanwhile: a message, not a crash
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the message")
            assert "no run 'no-such-run'" in app.screen.lines[0]
            await pilot.press("escape", "question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("x")  # any key closes the help
            assert not isinstance(app.screen, HelpScreen)
            await pilot.press("q")
        assert app.return_value == 0

    async def too_small(source: FrameSource) -> None:
        app = BtopApp(source, refresh=0.2)
        async with app.run_test(size=(60, 20)) as pilot:
            await pilot.pause(0.1)
            text = str(app.query_one("#small", Static).render())
            assert "60×20" in text and "80×24" in text
            assert not app.query_one("#failures").display

    args = argparse.Namespace(redis_url=load.url, namespace=load.ns)
    with inspector(args) as ins:
        asyncio.run(scenario(FrameSource(ins)))
        asyncio.run(too_small(FrameSource(ins)))


def test_in_a_real_terminal(load: Load):
    env = {**load.env, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}
    term = Tmux([sys.executable, "-m", "blazing.monitoring.btop", "--refresh", "0.5"],
                100, 30, env, str(ROOT))
    try:
        def shows_the_load(screen: str) -> bool:
            lines = screen.splitlines()
            blocking = [ln.split() for ln in lines if ln.split()[:1] == ["blocking"]]
            return bool(blocking) and blocking[0][1] == str(QUEUED) and \
                sum("fail_importable" in ln for ln in lines) == FAILED
        screen = term.wait_for(shows_the_load, f"{QUEUED} queued and {FAILED} failures")
        assert "» FAILURES" in screen and "\n> " in screen
        term.send("Enter")
        term.wait_for(lambda s: f"run {load.failed[-1]}" in s, "the newest failure's run")
        term.send("q")  # back
        term.wait_for(lambda s: "» FAILURES" in s, "the dashboard again")
        term.send("q")  # quit
        term.wait_for(lambda s: "EXIT=0" in s, "btop exiting 0")
    finally:
        term.close()
    small = Tmux([sys.executable, "-m", "blazing.monitoring.btop"], 60, 20, env, str(ROOT))
    try:
        screen = small.wait_for(lambda s: "EXIT=" in s, "btop exiting")
        assert "needs at least 80×24" in screen.replace("\n", "") and "EXIT=3" in screen
    finally:
        small.close()


def test_once_needs_no_textual(load: Load):
    code = ("import sys; sys.modules['textual'] = sys.modules['rich'] = None; "
            "from blazing.cli import main; sys.exit(main(['btop', '--once']))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env={**os.environ, "COLUMNS": "100", **load.env})
    assert out.returncode == 0, out.stderr
    assert "FAILURES" in out.stdout
