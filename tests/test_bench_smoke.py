"""benchmarks/smoke.py's verdict: a run passes only if it printed a table with figures."""

from __future__ import annotations

from pathlib import Path

from benchmarks import smoke


def test_a_table_of_figures_counts_its_rows() -> None:
    out = ("progress\n| figure | median | target |\n|---|---:|---|\n"
           "| drain rate, 300 queued | 1,657/s | ≥ 15,000/s: **not met** |\n"
           "| p50 | 1.93 ms | |\n\nMeasured by ...\n")
    assert smoke.figure_rows(out) == 2


def test_a_table_without_figures_or_no_table_counts_nothing() -> None:
    assert smoke.figure_rows("| system | drain/s |\n|---|---:|\n| blazing | — |\n") == 0
    assert smoke.figure_rows("drained 1,657/s\n") == 0


def test_every_benchmark_script_has_a_smoke() -> None:
    # Every runnable script under benchmarks/ but the tools around them and the charts
    # demo (a picture, not figures): a new benchmark without a smoke run fails here.
    root = Path(smoke.ROOT)
    not_benchmarks = {"benchmarks/smoke.py", "benchmarks/tables.py",
                      "benchmarks/foreman_charts_demo.py"}
    runnable = {str(p.relative_to(root)) for p in [*root.glob("benchmarks/*.py"),
                                                    *root.glob("benchmarks/peers/*.py")]
                if '__name__ == "__main__"' in p.read_text()}
    assert {s.script for s in smoke.SMOKES} == runnable - not_benchmarks


def test_a_header_alone_is_no_figure() -> None:
    assert smoke.figure_rows("| system | p50 ms | p99 ms |\n|---|---:|---:|\n") == 0
