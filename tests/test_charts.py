"""The foreman charts from a real foreman run on a real redis-server: a CPU burst
moves the workers to the blocking lane, an I/O burst moves them back; the PNG, the
HTML page, the terminal chart and the JSON show it. And bad input."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.apps.durable import make_app
from tests.support.foreman import OPTIMIZING, Foreman, cpu_then_io_bursts
from tests.support.redis_server import free_port
from tests.support.workers import ROOT

pytestmark = pytest.mark.timeout(180)
SECRET = "charts-secret"


@dataclass
class Run:
    env: dict[str, str]


def charts(env: dict[str, str], *args: str, module: str = "blazing.cli",
           extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the charts (through the console script's module, or its ``python -m`` twin)."""
    argv = [sys.executable, "-m", module, *(["charts"] if module == "blazing.cli" else []),
            *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env, **(extra or {})})


@pytest.fixture(scope="module")
def run(redis_server) -> Iterator[Run]:
    """A foreman whose optimizer moves 2+2 workers (each lane 1..3) with the load."""
    ns = "charts" + uuid.uuid4().hex[:8]
    fm = Foreman("--redis-url", redis_server.url, "--namespace", ns,
                 "--app", "tests.apps.durable:app", "--metrics-addr", "", *OPTIMIZING,
                 secret=SECRET)
    client = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                      secret=SECRET)
    try:
        cpu_then_io_bursts(fm, client, back_to=r"[23] async \+ [12] blocking")
        yield Run({"BLAZING_REDIS_URL": redis_server.url, "BLAZING_NAMESPACE": ns})
    finally:
        client.stop_sync()
        fm.close()


def test_json_shows_the_mix_moving_both_ways(run: Run):
    out = charts(run.env, "--since", "10m", "-o", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    (machine,) = data["machines"]
    mix = list(zip(machine["workers"]["async"], machine["workers"]["blocking"], strict=True))
    assert (2, 2) in mix and (1, 3) in mix and mix.index((2, 2)) < mix.index((1, 3))
    after = mix[mix.index((1, 3)):]
    assert any(a > 1 for a, _ in after), "back toward async after the CPU burst"
    # The machine's total is kept (a drained worker's replacement starts at once).
    assert {a + b for a, b in mix} <= {0, 4}, mix
    changes = [d for d in data["decisions"] if d["before"] != d["after"]]
    to_blocking = [i for i, d in enumerate(changes) if d["to"] == "blocking"]
    to_async = [i for i, d in enumerate(changes) if d["to"] == "async"]
    assert to_blocking and to_async and to_blocking[0] < to_async[-1], changes
    # The first move may be the informed start (the first look that sees work).
    assert all(d["applied"] is True for d in changes), changes
    assert {d["reason"] for d in changes} <= {"informed-start", "more-urgent"}, changes
    assert "more-urgent" in {d["reason"] for d in changes[1:]}, changes
    blocking = next(ln for ln in data["lanes"] if ln["lane"] == "blocking")
    assert max(blocking["depth"]) > 0 and max(blocking["oldest_s"]) > 0


def test_png_and_html_from_the_run(run: Run, tmp_path: Path):
    from matplotlib import image

    png, page = tmp_path / "charts.png", tmp_path / "charts.html"
    out = charts(run.env, "--since", "10m", "--png", str(png), "--html", str(page),
                 module="blazing.monitoring.monitor_foreman_charts")
    assert out.returncode == 0, out.stderr
    assert re.search(r"wrote .*charts\.png: \d+ samples, \d+ decisions \([1-9]\d* mix changes\)",
                     out.stdout), out.stdout

    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(io.BytesIO(data), format="png")
    assert pixels.shape[:2] == (1000, 1200)  # one machine: 12 × 10 inches at 100 dpi
    grey = pixels[..., :3].mean(axis=2)
    assert grey.std() > 0.05, "not a blank picture"
    assert (grey < 0.9).mean() > 0.03, "lines, areas and text cover the picture"
    # The two lanes' colours are there (the stacked mix, the depth lines).
    blue = (pixels[..., 2] > pixels[..., 0] + 0.2).mean()
    orange = (pixels[..., 0] > pixels[..., 2] + 0.2).mean()
    assert blue > 0.005 and orange > 0.005, (blue, orange)

    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>")
    for needed in ("more-urgent", "async", "blocking", "Mix changes", "Every decision",
                   "move 1 async→blocking"):
        assert needed in html, needed
    assert not re.search(r"https?://|<script|<link|@import|url\(", html), \
        "self-contained: nothing fetched from elsewhere"
    inline = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert inline and base64.b64decode(inline[1])[:8] == b"\x89PNG\r\n\x1a\n"
    listed = re.search(r"Every decision, newest first \((\d+) of (\d+)\)", html)
    assert listed and listed[1] == listed[2] and int(listed[1]) > 2
    assert html.split("Every decision")[1].count("<tr><td>") == int(listed[1])


def test_terminal_chart_once(run: Run):
    out = charts(run.env, "--since", "10m", "--once", extra={"COLUMNS": "100", "LINES": "30"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "\x1b[" not in out.stdout, "no colour codes when not a terminal"
    for title in ("workers per machine", "queue depth", "oldest queued age", "urgency"):
        assert title in out.stdout, title
    assert max(map(len, lines)) <= 100 and len(lines) <= 30
    assert re.search(r"move 1 async→blocking +\((informed-start|more-urgent); "
                     r"urgency async [\d.]+, blocking", out.stdout), out.stdout


def test_bad_input_gets_a_clear_message_and_exit_code(run: Run, tmp_path: Path):
    empty = {**run.env, "BLAZING_NAMESPACE": "nothing" + uuid.uuid4().hex[:6]}
    out = charts(empty, "--png", str(tmp_path / "x.png"))
    assert out.returncode == 1 and "no foreman samples" in out.stderr
    assert not (tmp_path / "x.png").exists()
    out = charts(run.env, "--since", "yesterday")
    assert out.returncode == 1 and "since='yesterday'" in out.stderr
    out = charts(run.env, "--png", str(tmp_path / "no" / "such" / "dir.png"))
    assert out.returncode == 1 and "cannot write" in out.stderr
    out = charts(run.env, "--once", extra={"COLUMNS": "60", "LINES": "20"})
    assert out.returncode == 3 and "needs at least 80×24" in out.stderr
    out = charts({"BLAZING_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
                  "BLAZING_CONNECT_TIMEOUT": "1"}, "--png", str(tmp_path / "y.png"))
    assert out.returncode == 1 and "does not answer" in out.stderr
    out = charts(run.env, "--bogus")
    assert out.returncode == 2


def test_a_missing_package_names_the_extra(run: Run, tmp_path: Path):
    code = ("import sys; sys.modules['matplotlib'] = None; from blazing.cli import main; "
            f"sys.exit(main(['charts', '--png', {str(tmp_path / 'x.png')!r}]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env={**os.environ, **run.env})
    assert out.returncode == 1
    assert "matplotlib" in out.stderr and "pip install 'blazing[monitoring]'" in out.stderr


def test_the_extra_is_imported_only_by_what_draws():
    code = ("import sys, blazing, blazing.cli; blazing.cli.parser(); "
            "import blazing.monitoring.btop, blazing.monitoring.monitor_foreman_charts, "
            "blazing.monitoring.frame, blazing.monitoring.chartdata; "
            "print(sorted({'textual', 'rich', 'plotext', 'matplotlib'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
