"""Build the Go engine into libblazing.so, the shared library python/blazing loads with ctypes.

Used by setup.py (``pip install .``, wheels, ``pip install -e .``) and by ``make lib``::

    python3 build_support/golib.py [--force] [TARGET]   # TARGET: python/blazing/libblazing.so

Stdlib only, because it runs inside pip's isolated build environment.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import elfdeps  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB_NAME = "libblazing.so"
SOURCE_LIB = os.path.join(ROOT, "python", "blazing", LIB_NAME)
# Everything libblazing.so is built from (keep in step with GO_SRC in the Makefile).
GO_INPUTS = ("go.mod", "go.sum", "core", "cgo", "cmd")
# The foreman daemon, shipped next to the library (python -m blazing.foreman runs it).
FOREMAN_REL = os.path.join("bin", "blazing-foreman")
MIN_GO = (1, 22)
# Stripped (-s -w: no symbol table, no DWARF; panics still print their Go stack traces):
# the binaries are about a third smaller.
GO_FLAGS = ("-trimpath", "-buildvcs=false", "-ldflags=-s -w")
GO_BUILD = ("build", "-buildmode=c-shared", *GO_FLAGS)
# The foreman needs no C: built with CGO_ENABLED=0 it is static, so it needs no glibc at
# all and cross-compiles without a C cross-compiler.
FOREMAN_BUILD = ("build", *GO_FLAGS)
# The C cross-compiler to use when GOARCH names another machine and CC is unset
# (Debian's gcc-<triplet> packages).
CROSS_CC = {"arm64": "aarch64-linux-gnu-gcc", "amd64": "x86_64-linux-gnu-gcc"}


class GoBuildError(Exception):
    """The Go toolchain is missing, too old, or the build failed."""


def _say(msg: str) -> None:
    print(f"golib: {msg}", file=sys.stderr, flush=True)


def find_go() -> str:
    """The go binary: $BLAZING_GO (a name or a path) if set, else `go` on PATH."""
    wanted = os.environ.get("BLAZING_GO") or "go"
    go = shutil.which(wanted)
    if go is None:
        if os.environ.get("BLAZING_GO"):
            where = f"BLAZING_GO={wanted!r} is not an executable"
        else:
            where = "`go` is not on PATH"
        raise GoBuildError(
            f"Building Blazing Flow needs the Go toolchain, Go >= {MIN_GO[0]}.{MIN_GO[1]}, "
            f"and a C compiler (cgo), but {where}. Install Go and put it on PATH, or set "
            "BLAZING_GO to the go binary."
        )
    return go


def check_go_version(go: str) -> str:
    try:
        out = subprocess.run(
            [go, "env", "GOVERSION"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        raise GoBuildError(f"could not run `{go} env GOVERSION`: {e}") from e
    m = re.search(r"go(\d+)\.(\d+)", out)
    if m and (int(m[1]), int(m[2])) < MIN_GO:
        raise GoBuildError(
            f"Building Blazing Flow needs Go >= {MIN_GO[0]}.{MIN_GO[1]}; {go} is {out}. "
            "Install a newer Go, or set BLAZING_GO to one."
        )
    return out


def newest_input_mtime() -> float:
    newest = 0.0
    for name in GO_INPUTS:
        path = os.path.join(ROOT, name)
        if os.path.isfile(path):
            newest = max(newest, os.stat(path).st_mtime)
        for dirpath, _, files in os.walk(path):
            for f in files:
                newest = max(newest, os.stat(os.path.join(dirpath, f)).st_mtime)
    return newest


def foreman_path(lib_target: str) -> str:
    """Where the foreman binary goes for a library built at ``lib_target``."""
    return os.path.join(os.path.dirname(os.path.abspath(lib_target)), FOREMAN_REL)


def host_machine() -> str:
    """This machine, in the names wheel tags use (x86_64, aarch64, ...)."""
    m = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m.lower(), m)


def target_machine() -> str:
    """The machine the build is for: $GOARCH's if set, else this one."""
    goarch = os.environ.get("GOARCH")
    if not goarch:
        return host_machine()
    if goarch not in elfdeps.GOARCH_MACHINES:
        raise GoBuildError(f"GOARCH={goarch!r} is not a Linux target this build knows: use "
                           f"one of {', '.join(sorted(elfdeps.GOARCH_MACHINES))}")
    return elfdeps.GOARCH_MACHINES[goarch]


def up_to_date(target: str) -> bool:
    """Cheap check: the library and the foreman exist, are newer than every Go input,
    stripped, and built for the target machine (a wheel for another GOARCH rebuilds)."""
    try:
        newest = newest_input_mtime()
        machine = target_machine()
        for t in (target, foreman_path(target)):
            if os.stat(t).st_mtime < newest:
                return False
            built = elfdeps.read(t)
            if built.machine != machine or not built.stripped:
                return False
        return True
    except (FileNotFoundError, elfdeps.ELFError):
        return False


def build_env() -> dict[str, str]:
    """The environment of `go build`: cgo on, and a C cross-compiler when GOARCH names
    another machine and CC does not say which."""
    env = dict(os.environ, CGO_ENABLED="1")
    goarch = env.get("GOARCH")
    if goarch and target_machine() != host_machine() and not env.get("CC"):
        cc = CROSS_CC.get(goarch)
        if cc is None or shutil.which(cc) is None:
            pkg = f" (Debian: apt-get install gcc-{cc.removesuffix('-gcc')})" if cc else ""
            raise GoBuildError(
                f"building {LIB_NAME} for GOARCH={goarch} on {host_machine()} needs a C "
                f"cross-compiler for cgo: set CC to one{pkg}")
        env["CC"] = cc
    return env


def build(target: str = SOURCE_LIB, force: bool = False, log: Callable[[str], None] = _say) -> bool:
    """Build libblazing.so at `target` unless it is up to date. Returns True if it built."""
    target = os.path.abspath(target)
    if not force and up_to_date(target):
        log(f"{os.path.relpath(target)} is up to date")
        return False
    go = find_go()
    version = check_go_version(go)
    outdir = os.path.dirname(target)
    os.makedirs(outdir, exist_ok=True)
    # Build in a scratch dir beside the target: the C header `go build` writes next to the
    # library stays out of the package, and os.replace swaps the library in atomically, so a
    # process that has the old one loaded is not disturbed.
    with tempfile.TemporaryDirectory(prefix=".libblazing-build-", dir=outdir) as tmp:
        out = os.path.join(tmp, LIB_NAME)
        cmd = [go, *GO_BUILD, "-o", out, "./cgo"]
        env = build_env()
        arch = f"GOARCH={env['GOARCH']} CC={env.get('CC', 'gcc')} " if env.get("GOARCH") else ""
        log(f"{version}: {arch}go {' '.join(GO_BUILD)} -o {os.path.relpath(target)} ./cgo")
        try:
            subprocess.run(cmd, cwd=ROOT, env=env, check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            raise GoBuildError(
                f"building {LIB_NAME} failed ({e}). It is a cgo c-shared build: it needs a C "
                "compiler (gcc or clang; set CC to choose one) besides Go."
            ) from e
        os.replace(out, target)
        foreman = foreman_path(target)
        os.makedirs(os.path.dirname(foreman), exist_ok=True)
        tmp_bin = os.path.join(tmp, "blazing-foreman")
        log(f"{version}: CGO_ENABLED=0 go {' '.join(FOREMAN_BUILD)} "
            f"-o {os.path.relpath(foreman)} ./cmd/foreman")
        try:
            subprocess.run([go, *FOREMAN_BUILD, "-o", tmp_bin, "./cmd/foreman"], cwd=ROOT,
                           env=dict(env, CGO_ENABLED="0"), check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            raise GoBuildError(f"building the foreman failed ({e})") from e
        os.replace(tmp_bin, foreman)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("target", nargs="?", default=SOURCE_LIB, help="output path of the library")
    p.add_argument("--force", action="store_true", help="build even if it looks up to date")
    args = p.parse_args(argv)
    try:
        build(args.target, force=args.force)
    except GoBuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
