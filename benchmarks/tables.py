"""Every table of figures the docs show, regenerated from its results file.

    python benchmarks/tables.py --check        # exit 1 naming each block that differs
    python benchmarks/tables.py --write        # rewrite every marked block
    python benchmarks/tables.py --print NAME   # one table, as the docs get it

A table is a name, a results file under ``benchmarks/results/`` (written, with its
provenance, by the one command that measured it) and a renderer (``benchmarks/render.py``,
the same function the benchmark script prints through). In the docs a table sits between

    <!-- table:NAME -->
    ...
    <!-- /table:NAME -->

and nothing between those markers is edited by hand: ``--write`` replaces it with the
rendering, ``--check`` (and tests/test_tables.py) fails when it differs.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import render  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


@dataclass(frozen=True)
class Table:
    """A table of the docs: where its figures are and how they become markdown."""

    name: str
    results: Path
    renderer: Callable[[dict[str, Any]], str]
    command: str  # what writes the results file

    def load(self) -> dict[str, Any]:
        """The parsed results file."""
        return json.loads(self.results.read_text())

    def render(self, results: dict[str, Any] | None = None) -> str:
        """The markdown, from `results` or else from the committed results file."""
        return self.renderer(self.load() if results is None else results)


TABLES: dict[str, Table] = {t.name: t for t in [
    Table("embedded", RESULTS / "embedded-latest.json", render.embedded,
          "python benchmarks/embedded.py"),
    Table("redis", RESULTS / "redis-latest.json", render.redis,
          "python benchmarks/redis_throughput.py"),
    Table("redis-history", RESULTS / "redis-latest.json", render.redis_history,
          "python benchmarks/redis_throughput.py"),
    Table("history-cost", RESULTS / "history-cost.json", render.history_cost,
          "python benchmarks/history_cost.py"),
    Table("history-instructions", RESULTS / "history-instructions.json",
          render.history_instructions, "python benchmarks/history_instructions.py"),
    Table("connectors", RESULTS / "connectors-latest.json", render.connectors,
          "python benchmarks/connectors.py"),
    Table("peers", RESULTS / "peers-latest.json", render.peers,
          "python benchmarks/peers/run.py"),
    Table("foreman-idle", RESULTS / "foreman-idle.json", render.foreman_idle,
          "python benchmarks/foreman_idle.py"),
    Table("optimizer-5s", RESULTS / "optsim.json", render.optimizer_table("5s"),
          "python benchmarks/optsim.py"),
    Table("optimizer-30s", RESULTS / "optsim.json", render.optimizer_table("30s"),
          "python benchmarks/optsim.py"),
    Table("optimizer-seeds", RESULTS / "optsim.json", render.optimizer_seeds,
          "python benchmarks/optsim.py"),
]}

# The documents whose marked blocks are tables.
DOCUMENT_GLOBS = ("README.md", "docs/*.md", "benchmarks/README.md", "benchmarks/peers/README.md",
                  "core/optimizer/README.md")

# A marker is a line of its own (so prose can mention one in backquotes).
OPEN = re.compile(r"^<!-- table:([\w-]+) -->$", re.M)
CLOSE = re.compile(r"^<!-- /table:([\w-]+) -->$", re.M)
BLOCK = re.compile(r"^(<!-- table:([\w-]+) -->\n)(.*?)^(<!-- /table:\2 -->)$", re.S | re.M)


@dataclass(frozen=True)
class Block:
    """One marked block of a document."""

    document: Path
    name: str
    content: str  # what is between the markers
    line: int  # of the opening marker, 1-based


def documents() -> list[Path]:
    """Every document that may hold marked tables."""
    found: set[Path] = set()
    for pattern in DOCUMENT_GLOBS:
        found.update(ROOT.glob(pattern))
    return sorted(found)


def rel(path: Path) -> str:
    """A path relative to the repository, for messages."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def blocks(document: Path, text: str | None = None) -> tuple[list[Block], list[str]]:
    """The marked blocks of a document, and its marker problems (an opening marker
    without its closing one, a closing one without its opening, an unknown name)."""
    text = document.read_text() if text is None else text
    found = []
    problems = []
    for m in BLOCK.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        found.append(Block(document, m.group(2), m.group(3), line))
    paired = {m.start(1) for m in BLOCK.finditer(text)}
    for m in OPEN.finditer(text):
        if m.start() not in paired:
            problems.append(f"{rel(document)}:{text.count(chr(10), 0, m.start()) + 1}: "
                            f"<!-- table:{m.group(1)} --> has no <!-- /table:{m.group(1)} -->")
    closes = {m.start(4) for m in BLOCK.finditer(text)}
    for m in CLOSE.finditer(text):
        if m.start() not in closes:
            problems.append(f"{rel(document)}:{text.count(chr(10), 0, m.start()) + 1}: "
                            f"<!-- /table:{m.group(1)} --> without its opening marker")
    for b in found:
        if b.name not in TABLES:
            problems.append(f"{rel(document)}:{b.line}: unknown table {b.name!r} "
                            f"(known: {', '.join(TABLES)})")
    return found, problems


def renderings() -> tuple[dict[str, str], list[str]]:
    """Every table rendered from its results file, and the tables that cannot be
    (a missing file, a file without provenance or without what its renderer needs)."""
    out: dict[str, str] = {}
    problems = []
    for name, table in TABLES.items():
        try:
            out[name] = table.render()
        except (OSError, ValueError, KeyError, TypeError) as e:
            problems.append(f"table {name!r}: cannot render {rel(table.results)}: "
                            f"{type(e).__name__}: {e}")
    return out, problems


def check() -> list[str]:
    """Every problem: a block that differs from its rendering (with a short diff), a
    table that cannot be rendered, a marker problem."""
    rendered, problems = renderings()
    for doc in documents():
        found, marker_problems = blocks(doc)
        problems += marker_problems
        for b in found:
            if b.name not in rendered:
                continue
            if b.content != rendered[b.name]:
                diff = difflib.unified_diff(b.content.splitlines(), rendered[b.name].splitlines(),
                                            "in the document", "rendered", lineterm="", n=0)
                shown = list(diff)[2:14]
                problems.append(f"{rel(doc)}:{b.line}: table {b.name!r} differs from the "
                                f"rendering of {rel(TABLES[b.name].results)}:\n    "
                                + "\n    ".join(shown))
    return problems


def write() -> tuple[list[Path], list[str]]:
    """Replace every marked block with its rendering; the documents changed, and the
    problems (a table that cannot be rendered keeps its block as it is)."""
    rendered, problems = renderings()
    changed = []
    for doc in documents():
        text = doc.read_text()

        def splice(m: re.Match[str]) -> str:
            name = m.group(2)
            if name not in rendered:
                return m.group(0)
            return m.group(1) + rendered[name] + m.group(4)

        new = BLOCK.sub(splice, text)
        if new != text:
            doc.write_text(new)
            changed.append(doc)
        problems += blocks(doc, new)[1]
    return changed, problems


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true",
                      help="exit 1 naming each marked block that differs from its rendering")
    mode.add_argument("--write", action="store_true", help="rewrite every marked block")
    mode.add_argument("--print", metavar="NAME", choices=sorted(TABLES),
                      help="print one table's rendering")
    mode.add_argument("--list", action="store_true",
                      help="every table, its results file and where the docs show it")
    args = ap.parse_args(argv)
    if args.print:
        sys.stdout.write(TABLES[args.print].render())
        return 0
    if args.list:
        where: dict[str, list[str]] = {}
        for doc in documents():
            for b in blocks(doc)[0]:
                where.setdefault(b.name, []).append(f"{rel(doc)}:{b.line}")
        for name, t in TABLES.items():
            print(f"{name}: {rel(t.results)} (written by `{t.command}`); shown in "
                  + (", ".join(where.get(name, [])) or "no document"))
        return 0
    if args.write:
        changed, problems = write()
        for doc in changed:
            print(f"rewrote {rel(doc)}")
    else:
        problems = check()
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
