"""Packaging: the sdist carries the Go sources and builds a wheel with Go; the wheel is
tagged by what its binaries need from glibc and installs and runs the quick start on every
supported Python found here, with no Go on PATH.

One sdist and one wheel (built from that sdist, so the sdist is proven to build) serve the
whole session; building them costs one Go build (about a minute on a cold Go cache).
The aarch64 wheel is a cross-build with Go and Debian's aarch64-linux-gnu-gcc.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import blazing
from tests.support.sockets import require_servers

ROOT = Path(__file__).resolve().parent.parent
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
# The floor of the msgpack range in pyproject.toml, installed on the oldest Python.
MSGPACK_FLOOR = "1.1.0"
QUICKSTART_LINE = "pipeline('123') -> {'id': '123', 'result': 6}"
BINARIES = ("blazing/libblazing.so", "blazing/bin/blazing-foreman")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def run(cmd: list[str], timeout: float = 600, **kw) -> subprocess.CompletedProcess[str]:
    """Run a command, showing its output if it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def path_without_go() -> str:
    """$PATH less every directory that holds a `go`."""
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not (Path(d) / "go").exists()]
    return os.pathsep.join(dirs)


def env_without_go() -> dict[str, str]:
    """This environment with no way to find Go."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("BLAZING_GO", "GOROOT", "GOARCH", "CC", "PYTHONPATH")}
    env["PATH"] = path_without_go()
    assert shutil.which("go", path=env["PATH"]) is None
    return env


def find_python(minor: str) -> str | None:
    """An interpreter of Python ``minor`` that can make virtualenvs, or None."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [shutil.which(f"python{minor}"),
                  *sorted(str(p) for p in pyenv.glob(f"{minor}.*/bin/python{minor}"))]
    for exe in filter(None, candidates):
        probe = subprocess.run(
            [exe, "-c", "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=60)
        if probe.returncode == 0 and probe.stdout.strip() == minor:
            return exe
    return None


def glibc_versions(path: Path) -> set[tuple[int, int]]:
    """The GLIBC_x.y symbol versions a binary needs, as readelf reads them."""
    out = run(["readelf", "-V", "--wide", str(path)]).stdout
    return {(int(a), int(b)) for a, b in re.findall(r"Name: GLIBC_(\d+)\.(\d+)", out)}


def is_stripped(path: Path) -> bool:
    """No symbol table and no DWARF, as readelf lists the sections."""
    out = run(["readelf", "-S", "--wide", str(path)]).stdout
    return not re.search(r"\s\.(symtab|debug_\w+|zdebug_\w+)\s", out)


def wheel_metadata(wheel: Path) -> dict[str, list[str]]:
    """The wheel's METADATA headers (each a list: some repeat) and its body."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        msg = Parser().parsestr(zf.read(name).decode())
    out: dict[str, list[str]] = {}
    for key, value in msg.items():
        out.setdefault(key, []).append(value)
    out["body"] = [msg.get_payload()]
    return out


def extract_binaries(wheel: Path, into: Path) -> list[Path]:
    """The two Go binaries of a wheel, unpacked."""
    with zipfile.ZipFile(wheel) as zf:
        for name in BINARIES:
            zf.extract(name, into)
    return [into / name for name in BINARIES]


def manylinux_tag(binaries: list[Path], arch: str) -> str:
    """The tag the binaries allow, worked out apart from the build: the newest GLIBC
    version readelf finds, never below manylinux2014's 2.17."""
    newest = max({(2, 17)}.union(*(glibc_versions(b) for b in binaries)))
    tag = f"manylinux_{newest[0]}_{newest[1]}_{arch}"
    return tag + (f".manylinux2014_{arch}" if newest == (2, 17) else "")


def build_wheel(sdist: Path, out: Path, **env: str) -> Path:
    """``pip wheel`` of the sdist (an isolated build, as a user's pip makes it)."""
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(sdist)],
        env={**os.environ, **env})
    wheels = list(out.glob("blazing-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="session")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sdist")
    run([sys.executable, "-m", "build", "--sdist", "--outdir", str(out), str(ROOT)])
    found = list(out.glob("blazing-*.tar.gz"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="session")
def wheel(sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = {k: v for k, v in os.environ.items() if k not in ("GOARCH", "CC")}
    return build_wheel(sdist, tmp_path_factory.mktemp("wheel"), **env)


def test_sdist_carries_the_go_sources_and_no_binaries(sdist: Path) -> None:
    top = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as tf:
        names = {n.removeprefix(top + "/") for n in tf.getnames()}
        info = Parser().parsestr(tf.extractfile(f"{top}/PKG-INFO").read().decode())
    for needed in ("go.mod", "go.sum", "cgo/main.go", "cmd/foreman/main.go",
                   "core/engine/dispatcher.go", "build_support/golib.py",
                   "build_support/elfdeps.py", "setup.py", "pyproject.toml", "README.md",
                   "python/blazing/__init__.py", "python/blazing/py.typed"):
        assert needed in names, needed
    assert not [n for n in names if n.endswith((".so", ".h", "blazing-foreman"))]
    assert info["Name"] == "blazing" and info["Version"] == blazing.__version__


def test_wheel_metadata_names_blazing_with_ranges_and_the_readme(wheel: Path) -> None:
    meta = wheel_metadata(wheel)
    assert meta["Name"] == ["blazing"]
    assert meta["Version"] == [blazing.__version__]
    assert meta["Requires-Python"] == [">=3.10"]
    runtime = [r for r in meta["Requires-Dist"] if "extra ==" not in r]
    assert runtime == ["msgpack<2,>=1.1"], "a range, not a pin"
    assert not [r for r in meta["Requires-Dist"] if "==" in r.split(";")[0]
                and "extra == \"test\"" not in r], "no exact pins outside the test extra"
    assert meta["Description-Content-Type"] == ["text/markdown"]
    assert meta["body"][0].startswith("# Blazing Flow"), "the README is the description"


def test_wheel_is_tagged_by_the_glibc_its_stripped_binaries_need(wheel: Path,
                                                                tmp_path: Path) -> None:
    binaries = extract_binaries(wheel, tmp_path)
    assert all(is_stripped(b) for b in binaries), "binaries are stripped"
    tag = manylinux_tag(binaries, "x86_64")
    assert wheel.name == f"blazing-{blazing.__version__}-py3-none-{tag}.whl"
    assert glibc_versions(binaries[1]) == set(), "the foreman is static: it needs no glibc"
    with zipfile.ZipFile(wheel) as zf:
        wheel_file = zf.read(f"blazing-{blazing.__version__}.dist-info/WHEEL").decode()
    assert "Root-Is-Purelib: false" in wheel_file
    # auditwheel, the tool PyPI's docs point to, draws the same conclusion offline.
    pytest.importorskip("auditwheel")
    shown = run([sys.executable, "-m", "auditwheel", "show", str(wheel)]).stdout
    assert f'consistent with\nthe following platform tag: "{tag.split(".")[0]}"' in shown


@pytest.mark.parametrize("minor", PYTHONS)
def test_wheel_installs_and_runs_the_quick_start_without_go(wheel: Path, tmp_path: Path,
                                                           minor: str) -> None:
    python = find_python(minor)
    if python is None:
        pytest.skip(f"no Python {minor} with venv and ensurepip on PATH or under pyenv")
    env = env_without_go()
    venv = tmp_path / "venv"
    run([python, "-m", "venv", str(venv)], env=env)
    py = str(venv / "bin" / "python")
    # Binary wheels only: nothing may be compiled, msgpack included. The oldest Python
    # gets the oldest msgpack the range allows.
    deps = [f"msgpack=={MSGPACK_FLOOR}"] if minor == PYTHONS[0] else []
    run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--only-binary",
         ":all:", str(wheel), *deps], env=env)
    # The quick start, run as a user runs it: a copy, away from the source tree.
    shutil.copy(ROOT / "examples" / "quickstart.py", tmp_path / "quickstart.py")
    out = run([py, "quickstart.py"], cwd=tmp_path, env=env, timeout=120).stdout
    assert QUICKSTART_LINE in out.splitlines()
    where = run([py, "-c", "import blazing, msgpack; print(blazing.__file__); "
                 "print(msgpack.version)"], cwd=tmp_path, env=env).stdout.split("\n")
    assert where[0].startswith(str(venv)), "imported from the venv, not the source tree"
    if deps:
        assert where[1] == "(1, 1, 0)"
    # The shipped foreman runs through its module form and through the console script,
    # which also reports both versions.
    helped = run([py, "-m", "blazing.foreman", "--help"], cwd=tmp_path, env=env)
    assert "--redis-url" in helped.stdout + helped.stderr
    script = str(venv / "bin" / "blazing")
    helped = run([script, "foreman", "--help"], cwd=tmp_path, env=env)
    assert "--redis-url" in helped.stdout + helped.stderr
    shown = run([script, "--version"], cwd=tmp_path, env=env).stdout
    assert shown.startswith(f"blazing {blazing.__version__} (blazing-core "), shown
    assert f"Python {minor}." in shown


def test_aarch64_wheel_cross_builds_from_the_sdist(sdist: Path, tmp_path: Path) -> None:
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        reason = "aarch64-linux-gnu-gcc is missing (Debian: apt-get install gcc-aarch64-linux-gnu)"
        if require_servers():
            pytest.fail(reason)
        pytest.skip(reason)
    wheel = build_wheel(sdist, tmp_path / "out", GOARCH="arm64")
    binaries = extract_binaries(wheel, tmp_path / "unpacked")
    for b in binaries:
        header = run(["readelf", "-h", str(b)]).stdout
        assert re.search(r"Machine:\s+AArch64", header), b
        assert is_stripped(b), b
    assert wheel.name == (f"blazing-{blazing.__version__}-py3-none-"
                          f"{manylinux_tag(binaries, 'aarch64')}.whl")
