"""The README fits on a screen, and every link in the docs resolves inside the repository
(files, and the headings that anchors point at)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted({ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("benchmarks/**/*.md"),
               *ROOT.glob("core/**/README.md")})
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(md: Path) -> set[str]:
    """GitHub-style anchors of a Markdown file's headings."""
    out = set()
    in_code = False
    for line in md.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        title = line.lstrip("#").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
        out.add(slug)
    return out


def test_readme_fits_on_a_screen():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 120, f"README.md has {len(lines)} lines: move detail to docs/"


@pytest.mark.parametrize("md", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves_inside_the_repository(md: Path):
    bad = []
    for target in LINK.findall(md.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # http:, mailto:
        path_part, _, anchor = target.partition("#")
        path = (md.parent / path_part).resolve() if path_part else md
        if ROOT not in path.parents and path != ROOT:
            bad.append(f"{target}: outside the repository")
        elif not path.exists():
            bad.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            bad.append(f"{target}: no heading #{anchor} in {path.relative_to(ROOT)}")
    assert not bad, f"{md.relative_to(ROOT)}: " + "; ".join(bad)
