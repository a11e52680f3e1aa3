"""What an ELF binary needs from the system, and the wheel platform tag that follows.

A manylinux tag (PEP 600) promises that a wheel's binaries run on any Linux whose glibc is
at least ``X.Y`` and that they link nothing beyond glibc's own libraries. This reads the
two facts that decide it from each binary: its ``DT_NEEDED`` libraries and the symbol
versions it needs from them (``GLIBC_2.34`` and the like, the ``.gnu.version_r`` section),
the same check ``auditwheel show`` makes for these libraries. Stdlib only, because setup.py
runs it inside pip's isolated build environment::

    python3 build_support/elfdeps.py FILE...   # prints each file's needs, then the tag
"""

from __future__ import annotations

import re
import struct
import sys
from dataclasses import dataclass, field

# e_machine -> the machine name wheel tags use (the e_ident data byte decides ppc64/ppc64le).
_MACHINES = {3: "i686", 40: "armv7l", 62: "x86_64", 183: "aarch64", 22: "s390x",
             243: "riscv64"}
# GOARCH -> the same names, to check that a library was built for the wanted target.
GOARCH_MACHINES = {"amd64": "x86_64", "arm64": "aarch64", "386": "i686", "arm": "armv7l",
                   "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
# glibc's own libraries and dynamic loaders: the only ones a manylinux wheel may link to
# without shipping them.
GLIBC_LIBS = frozenset({
    "libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0",
    "libresolv.so.2", "libutil.so.1", "libanl.so.1", "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1", "ld-linux.so.2", "ld-linux-armhf.so.3", "ld64.so.2",
    "ld64.so.1", "ld-linux-riscv64-lp64d.so.1",
})
# The oldest glibc a tag names: manylinux2014's, the oldest baseline still built for.
FLOOR = (2, 17)
# Legacy aliases (PEP 599) that older pips know, by glibc version.
LEGACY = {(2, 17): "manylinux2014"}

_SHT_DYNAMIC, _SHT_VERNEED, _DT_NEEDED, _DT_NULL = 6, 0x6FFFFFFE, 1, 0
_GLIBC_VERSION = re.compile(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?$")


class ELFError(ValueError):
    """The file is not an ELF binary this reader understands."""


@dataclass
class ElfNeeds:
    """What one binary needs at run time."""

    path: str
    machine: str
    needed: list[str] = field(default_factory=list)  # DT_NEEDED, in order
    versions: dict[str, set[str]] = field(default_factory=dict)  # library -> versions
    sections: list[str] = field(default_factory=list)

    @property
    def glibc(self) -> tuple[int, int] | None:
        """The newest ``GLIBC_x.y`` it needs; None if it needs none (static, or no glibc)."""
        found = [(int(m[1]), int(m[2])) for vs in self.versions.values() for v in vs
                 if (m := _GLIBC_VERSION.match(v))]
        return max(found) if found else None

    @property
    def stripped(self) -> bool:
        """No symbol table and no debug sections."""
        return not any(s == ".symtab" or s.startswith((".debug_", ".zdebug_"))
                       for s in self.sections)

    def manylinux_problems(self) -> list[str]:
        """Why it cannot go in a manylinux wheel (empty: it can)."""
        problems = [f"{self.path} links {lib}, which is not part of glibc"
                    for lib in self.needed if lib not in GLIBC_LIBS]
        problems += [f"{self.path} needs {v} from {lib}"
                     for lib, vs in sorted(self.versions.items()) for v in sorted(vs)
                     if not _GLIBC_VERSION.match(v)]
        return problems


def read(path: str) -> ElfNeeds:
    """Read a binary's machine, needed libraries, needed symbol versions and sections."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or len(data) < 64:
        raise ELFError(f"{path} is not an ELF file")
    bits = {1: 32, 2: 64}.get(data[4])
    order = {1: "<", 2: ">"}.get(data[5])
    if bits is None or order is None:
        raise ELFError(f"{path}: unknown ELF class or byte order")
    addr = "I" if bits == 32 else "Q"
    e_machine = struct.unpack_from(order + "H", data, 18)[0]
    machine = _MACHINES.get(e_machine)
    if e_machine == 21:  # EM_PPC64
        machine = "ppc64le" if order == "<" else "ppc64"
    if machine is None:
        raise ELFError(f"{path}: unknown machine {e_machine}")
    shoff = struct.unpack_from(order + addr, data, 40 if bits == 64 else 32)[0]
    shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data,
                                                    58 if bits == 64 else 46)
    # Section header: name, type, flags, addr, offset, size, link, info, align, entsize.
    sh_fmt = order + ("IIIIIIIIII" if bits == 32 else "IIQQQQIIQQ")
    sections = [struct.unpack_from(sh_fmt, data, shoff + i * shentsize) for i in range(shnum)]

    def strings(index: int) -> bytes:
        s = sections[index]
        return data[s[4]:s[4] + s[5]]

    def cstr(table: bytes, at: int) -> str:
        return table[at:table.index(b"\0", at)].decode("ascii", "replace")

    names = strings(shstrndx) if shnum else b""
    out = ElfNeeds(path=path, machine=machine, sections=[cstr(names, s[0]) for s in sections])
    for s in sections:
        if s[1] == _SHT_DYNAMIC:
            table, dyn = strings(s[6]), order + ("iI" if bits == 32 else "qQ")
            for at in range(s[4], s[4] + s[5], struct.calcsize(dyn)):
                tag, val = struct.unpack_from(dyn, data, at)
                if tag == _DT_NULL:
                    break
                if tag == _DT_NEEDED:
                    out.needed.append(cstr(table, val))
        elif s[1] == _SHT_VERNEED:
            table, at = strings(s[6]), s[4]
            for _ in range(s[7]):  # sh_info: the number of Verneed entries
                _, count, file_off, aux, nxt = struct.unpack_from(order + "HHIII", data, at)
                versions = out.versions.setdefault(cstr(table, file_off), set())
                a = at + aux
                for _ in range(count):
                    _, _, _, name_off, anext = struct.unpack_from(order + "IHHII", data, a)
                    versions.add(cstr(table, name_off))
                    a += anext
                at += nxt
    return out


def platform_tag(paths: list[str]) -> tuple[str, list[str]]:
    """The wheel platform tag for binaries at ``paths`` and, if it is a plain
    ``linux_<arch>`` one, the reasons it could not be manylinux."""
    binaries = [read(p) for p in paths]
    machines = {b.machine for b in binaries}
    if len(machines) != 1:
        raise ELFError(f"binaries built for different machines: {sorted(machines)}")
    arch = machines.pop()
    problems = [p for b in binaries for p in b.manylinux_problems()]
    if problems:
        return f"linux_{arch}", problems
    needed = [g for b in binaries if (g := b.glibc) is not None]
    major, minor = max([FLOOR, *needed])
    tag = f"manylinux_{major}_{minor}_{arch}"
    if (major, minor) in LEGACY:
        tag += f".{LEGACY[(major, minor)]}_{arch}"
    return tag, []


def main(argv: list[str]) -> int:
    """Print each binary's needs and the platform tag they allow."""
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        for path in argv:
            b = read(path)
            glibc = ".".join(map(str, b.glibc)) if b.glibc else "none"
            print(f"{path}: {b.machine}, needs {', '.join(b.needed) or 'no library'}, "
                  f"GLIBC {glibc}, {'stripped' if b.stripped else 'not stripped'}")
        tag, problems = platform_tag(argv)
    except (OSError, ELFError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for p in problems:
        print(f"not manylinux: {p}")
    print(tag)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
