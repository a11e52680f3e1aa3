"""The package's layers hold: nothing below app.py imports the runtime (not even for type
checking), the frame layout is written once, and no private name crosses packages."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "blazing"
# Who may import the runtime: the apps on top of it, and the runtime itself.
RUNTIME_USERS = {"app.py", "runtime.py"}


def modules() -> dict[str, ast.Module]:
    return {str(p.relative_to(PACKAGE)): ast.parse(p.read_text())
            for p in PACKAGE.rglob("*.py")}


def imported(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """(module, names) of every import, wherever it is (TYPE_CHECKING blocks included)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return out


def test_nothing_below_the_app_imports_the_runtime():
    offenders = [name for name, tree in modules().items() if name not in RUNTIME_USERS
                 and any(mod == "blazing.runtime" for mod, _ in imported(tree))]
    assert not offenders, f"modules below app.py that import the runtime: {offenders}"


def test_no_private_name_crosses_packages():
    offenders = []
    for name, tree in modules().items():
        for mod, names in imported(tree):
            if mod.startswith("blazing"):
                offenders += [f"{name}: {mod}.{n}" for n in names
                              if n.startswith("_") and not n.startswith("__")]
    assert not offenders, offenders


def test_frame_codes_are_written_once():
    # Command and event codes are defined in frames.py and nowhere else.
    offenders = []
    for name, tree in modules().items():
        if name == "frames.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    elts = target.elts if isinstance(target, ast.Tuple) else [target]
                    offenders += [f"{name}: {t.id}" for t in elts if isinstance(t, ast.Name)
                                  and t.id.startswith(("CMD_", "EV_", "LANE_", "QUERY_"))]
    assert not offenders, offenders
