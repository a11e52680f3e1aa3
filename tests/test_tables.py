"""The docs' tables are renderings of committed results files, never edited by hand.

Every block between ``<!-- table:NAME -->`` markers must equal what benchmarks/render.py
makes of its results file; every results file names the commit, command, machine and
time of the run that wrote it; the optimizer's simulation, being deterministic, is run
again and must print what is stored; and no prose line quotes a figure of a table (a
figure quoted outside its block would go stale when the table is regenerated).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from benchmarks import optsim, render, tables

ROOT = Path(__file__).resolve().parents[1]
RESULT_FILES = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
BLOCKS = [b for doc in tables.documents() for b in tables.blocks(doc)[0]]


def _id(b: tables.Block) -> str:
    return f"{tables.rel(b.document)}:{b.line}:{b.name}"


@pytest.mark.parametrize("block", BLOCKS, ids=_id)
def test_marked_block_is_the_rendering_of_its_results_file(block: tables.Block) -> None:
    rendered = tables.TABLES[block.name].render()
    assert block.content == rendered, (
        f"{_id(block)} differs from the rendering of "
        f"{tables.rel(tables.TABLES[block.name].results)}: run python benchmarks/tables.py "
        "--write (and never edit between the markers)")


def test_markers_pair_up_and_name_known_tables() -> None:
    problems = [p for doc in tables.documents() for p in tables.blocks(doc)[1]]
    assert not problems, "\n".join(problems)


def test_every_table_is_shown_somewhere() -> None:
    shown = {b.name for b in BLOCKS}
    assert set(tables.TABLES) <= shown, f"never shown: {set(tables.TABLES) - shown}"


def test_check_passes_on_the_repository() -> None:
    assert tables.main(["--check"]) == 0


@pytest.mark.parametrize("path", RESULT_FILES, ids=lambda p: p.name)
def test_results_file_names_the_run_that_wrote_it(path: Path) -> None:
    res = json.loads(path.read_text())
    p = res.get("provenance")
    assert isinstance(p, dict), f"{path.name} has no provenance"
    for key in ("commit", "command", "machine", "when"):
        assert p.get(key), f"{path.name}: provenance lacks {key}"
    assert p["command"].startswith("python benchmarks/"), p["command"]
    if p.get("reconstructed"):  # an older run's: said so, and what it was rebuilt from
        assert p.get("dirty") is not True, f"{path.name} was written from a tree with changes"
    else:
        assert p.get("dirty") is False, f"{path.name} was written from a tree with changes"
    assert not res.get("smoke"), f"{path.name} is a smoke run's"
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():
        shallow = subprocess.run([git, "rev-parse", "--is-shallow-repository"], cwd=ROOT,
                                 capture_output=True, text=True).stdout.strip()
        if shallow == "false":
            found = subprocess.run([git, "cat-file", "-e", f"{p['commit']}^{{commit}}"],
                                   cwd=ROOT, capture_output=True)
            assert found.returncode == 0, f"{path.name}: no commit {p['commit']} here"


def test_a_results_file_without_provenance_is_refused() -> None:
    res = tables.TABLES["embedded"].load()
    del res["provenance"]
    with pytest.raises(ValueError, match="no provenance"):
        render.embedded(res)
    res = tables.TABLES["embedded"].load()
    del res["provenance"]["commit"]
    with pytest.raises(ValueError, match="lacks commit"):
        render.embedded(res)


def test_check_names_the_block_that_differs_and_write_mends_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tables.TABLES["foreman-idle"].render()
    doc = tmp_path / "doc.md"
    doc.write_text(f"# A doc\n\nprose\n\n<!-- table:foreman-idle -->\n"
                   f"{good.replace('foreman', 'formen', 1)}<!-- /table:foreman-idle -->\nmore\n")
    monkeypatch.setattr(tables, "documents", lambda: [doc])
    monkeypatch.setattr(tables, "TABLES", {"foreman-idle": tables.TABLES["foreman-idle"]})
    assert tables.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "doc.md:5: table 'foreman-idle' differs" in err
    assert "-| formen |" in err and "+| foreman |" in err  # the diff shows what changes
    assert tables.main(["--write"]) == 0
    assert doc.read_text() == (f"# A doc\n\nprose\n\n<!-- table:foreman-idle -->\n{good}"
                               "<!-- /table:foreman-idle -->\nmore\n")
    assert tables.main(["--check"]) == 0


def test_unpaired_and_unknown_markers_are_named(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- table:nosuch -->\nx\n<!-- /table:nosuch -->\n"
                   "<!-- table:embedded -->\nnot closed\n")
    problems = tables.blocks(doc)[1]
    assert any("unknown table 'nosuch'" in p for p in problems), problems
    assert any("<!-- table:embedded --> has no <!-- /table:embedded -->" in p
               for p in problems), problems


@pytest.mark.timeout(600)
def test_optimizer_simulation_prints_what_is_stored(tmp_path: Path) -> None:
    """cmd/optsim is deterministic: every stored run, run again, prints the same."""
    if not shutil.which("go"):
        pytest.skip("go is not installed: cannot build cmd/optsim")
    stored = json.loads(tables.TABLES["optimizer-5s"].results.read_text())
    exe = optsim.build(tmp_path)
    for run in stored["runs"]:
        assert run["command"] == "go run ./cmd/optsim " + " ".join(
            optsim.flags(run["interval"], run["seed"]))
        again = optsim.simulate(exe, run["interval"], run["seed"])
        assert again == run["markdown"], (
            f"{run['command']} now prints something else: run python benchmarks/optsim.py "
            "and python benchmarks/tables.py --write")


# A figure: a number with a decimal point or a thousands separator (1.52, 29,133),
# not part of a longer token (a date, a commit).
FIGURE = re.compile(r"(?<![\w.,/-])(\d{1,3}(?:,\d{3})+|\d+\.\d+)(?![\w.,/-]*\d)")


# In prose, a figure counts when a unit follows it (versions such as "Go 1.22" have none).
PROSE_FIGURE = re.compile(FIGURE.pattern + r"(?=\s?(?:×|%|ms\b|µs\b|s\b|/s|MB\b|B\b|KiB\b|k\b|"
                          r"min\b))")


def figures(text: str) -> set[str]:
    """The figures a text quotes."""
    return set(FIGURE.findall(text))


def prose_lines(doc: Path) -> list[tuple[int, str]]:
    """A document's lines outside marked blocks and code fences."""
    out = []
    inside = fence = False
    for i, line in enumerate(doc.read_text().splitlines(), 1):
        if line.startswith("```"):
            fence = not fence
        elif tables.OPEN.search(line):
            inside = True
        elif tables.CLOSE.search(line):
            inside = False
        elif not inside and not fence:
            out.append((i, line))
    return out


def measured_figures(rendering: str) -> set[str]:
    """The figures of a rendered table's measurement cells: not the first column (what the
    row is, with its N), not a target, not the provenance line, and with at least three
    digits (1.5 or 0.4 are more often settings or targets than measurements)."""
    out = set()
    for line in rendering.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        for cell in line.strip("|").split("|")[1:]:
            if any(t in cell for t in ("≥", "≤", "<", "met")):
                continue
            out |= {f for f in figures(cell) if sum(c.isdigit() for c in f) >= 3}
    return out


def test_no_prose_line_quotes_a_figure_of_a_table() -> None:
    measured: dict[str, str] = {}
    for name, table in tables.TABLES.items():
        for f in measured_figures(table.render()):
            measured.setdefault(f, name)
    quoted = []
    for doc in tables.documents():
        for i, line in prose_lines(doc):
            for f in sorted(set(PROSE_FIGURE.findall(line)) & measured.keys()):
                quoted.append(f"{tables.rel(doc)}:{i}: {f} (table {measured[f]!r}): {line}")
    assert not quoted, ("figures of a table quoted in prose, which would go stale when the "
                        "table is regenerated; refer to the table instead:\n"
                        + "\n".join(quoted))
