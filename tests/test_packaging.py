"""Packaging: a wheel built from the repo carries libblazing.so and works in a fresh venv.

This builds the Go core through pip (about a minute on a cold Go cache), so it
runs once per session and shares its wheel between the checks.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(900)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    """Run a command, showing its output if it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)])
    wheels = list(out.glob("blazing_flow-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_is_a_platform_wheel_carrying_the_library(wheel: Path) -> None:
    # The library is native code, so the wheel must not claim to be pure Python.
    assert wheel.name.endswith("-py3-none-linux_x86_64.whl") or "-none-linux" in wheel.name
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert "blazing/libblazing.so" in names
    assert "blazing/__init__.py" in names
    assert not any(n.endswith(".h") for n in names), "the cgo header is not shipped"


def test_wheel_installs_and_runs_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    run([str(py), "-m", "pip", "install", "-q", str(wheel)])
    script = (
        "from blazing import SyncBlazing\n"
        "import blazing, pathlib\n"
        "app = SyncBlazing()\n"
        "@app.step\n"
        "def double(x):\n"
        "    return x * 2\n"
        "@app.workflow\n"
        "async def wf(x):\n"
        "    return await double(x) + 1\n"
        "print(app.wf(20))\n"
        "print(pathlib.Path(blazing.__file__).parent)\n"
        "app.stop()\n"
    )
    proc = run([str(py), "-c", script], cwd=tmp_path)
    result, where = proc.stdout.split()
    assert result == "41"
    assert str(venv) in where, "imported from the venv, not the source tree"
    assert (Path(where) / "libblazing.so").exists()
