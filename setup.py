"""setuptools hooks for the Go core; all metadata lives in pyproject.toml.

- `build_go`, a sub-command of `build`, compiles ./cgo into blazing/libblazing.so: into the
  build tree for `pip install .` and wheels, into python/blazing/ for `pip install -e .`.
  It skips the build when the library is newer than every Go source (build_support/golib.py).
  (It is a `build` sub-command rather than a custom `build_py` because setuptools' editable
  installs swallow errors raised by a custom `build_py`.)
- The distribution counts as binary (platform wheel, installed to platlib), and `bdist_wheel`
  tags it `py3-none-<platform>`: the library is native code but does not link against
  libpython, so one wheel serves every CPython 3 on that platform. The platform is read from
  the binaries built (build_support/elfdeps.py): their machine, and the newest glibc symbol
  version they need, e.g. `manylinux_2_34_x86_64`; `linux_<arch>` if they link anything
  beyond glibc. `GOARCH=arm64` (with `CC` a C cross-compiler, or Debian's
  aarch64-linux-gnu-gcc found on PATH) builds an aarch64 wheel.
"""

import logging
import os
import sys

from setuptools import Command, Distribution, setup
from setuptools.command.build import build as _build
from setuptools.errors import ExecError

try:
    from setuptools.command.bdist_wheel import bdist_wheel as _bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel as _bdist_wheel

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "build_support"))
import elfdeps  # noqa: E402
import golib  # noqa: E402


class build_go(Command):
    description = "build blazing/libblazing.so from the Go sources (cgo, c-shared)"
    user_options = [("force", "f", "build even if the library looks up to date")]
    boolean_options = ["force"]

    def initialize_options(self):
        self.build_lib = None
        self.force = None
        self.editable_mode = False  # set by setuptools for `pip install -e`

    def finalize_options(self):
        self.set_undefined_options("build", ("build_lib", "build_lib"), ("force", "force"))

    def _built_lib(self):
        return os.path.join(self.build_lib, "blazing", golib.LIB_NAME)

    def run(self):
        target = golib.SOURCE_LIB if self.editable_mode else self._built_lib()
        try:
            golib.build(target, bool(self.force), lambda msg: self.announce(msg, logging.INFO))
        except golib.GoBuildError as e:
            raise ExecError(str(e)) from None

    def get_outputs(self):
        return [self._built_lib(), golib.foreman_path(self._built_lib())]

    def get_output_mapping(self):  # used by strict editable installs
        return {self._built_lib(): golib.SOURCE_LIB,
                golib.foreman_path(self._built_lib()): golib.foreman_path(golib.SOURCE_LIB)}

    def get_source_files(self):
        return []


class build(_build):
    sub_commands = [("build_go", None), *_build.sub_commands]


class BinaryDistribution(Distribution):
    def has_ext_modules(self):  # ships a native library: not a pure-Python wheel
        return True


class bdist_wheel(_bdist_wheel):
    def get_tag(self):
        _, _, plat = super().get_tag()
        if not self.plat_name_supplied:  # --plat-name wins, as in setuptools
            plat = self._binaries_tag() or plat
        return "py3", "none", plat

    def _binaries_tag(self):
        """The platform tag the built binaries allow (None before they are built)."""
        built = self.get_finalized_command("build_go").get_outputs()
        if not all(os.path.exists(p) for p in built):
            return None
        try:
            tag, problems = elfdeps.platform_tag(built)
        except elfdeps.ELFError as e:  # not Linux binaries: keep setuptools' tag
            self.announce(f"platform tag left to setuptools: {e}", logging.WARNING)
            return None
        for problem in problems:
            self.announce(f"not a manylinux wheel: {problem}", logging.WARNING)
        return tag


setup(
    distclass=BinaryDistribution,
    cmdclass={"build": build, "build_go": build_go, "bdist_wheel": bdist_wheel},
)
