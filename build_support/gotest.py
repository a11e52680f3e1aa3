"""Run `go test` and name every skipped test with its reason at the end.

Plain `go test` (without -v) says nothing about a skipped test, so a machine without
redis-server would pass the Go tests silently with half of them unrun. This runs
`go test -json` with the given arguments, prints what plain `go test` prints (a line per
package, the output of failing tests), then a summary of the skipped tests and why.
Standard library only; the exit status is go test's.

    python3 build_support/gotest.py [go test flags and packages]   (BLAZING_GO names go)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict


def _reason(lines: list[str]) -> str:
    """The skip message from a skipped test's output (without the RUN/SKIP headers)."""
    said = [ln.strip() for ln in lines
            if ln.strip() and not ln.lstrip().startswith(("=== ", "--- SKIP"))]
    return " ".join(said) or "(no reason given)"


def main(argv: list[str]) -> int:
    """Run go test -json with ``argv``; return its exit status."""
    go = os.environ.get("BLAZING_GO") or "go"
    cmd = [go, "test", "-json", *argv]
    output: dict[tuple[str, str], list[str]] = defaultdict(list)
    skipped: list[tuple[str, str, str]] = []
    passed = failed = 0
    failed_packages: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                ev = json.loads(raw)
            except json.JSONDecodeError:
                sys.stdout.write(raw)  # not an event (go prints some lines as they are)
                continue
            action, pkg, test = ev.get("Action"), ev.get("Package", ""), ev.get("Test", "")
            if action == "build-output":
                sys.stdout.write(ev.get("Output", ""))
            elif action == "output":
                output[(pkg, test)].append(ev.get("Output", ""))
            elif test and action in ("pass", "fail", "skip"):
                lines = output.pop((pkg, test), [])
                if action == "skip":
                    skipped.append((pkg, test, _reason(lines)))
                elif action == "fail":
                    failed += 1
                    sys.stdout.write("".join(lines))
                else:
                    passed += 1
            elif not test and action in ("pass", "fail", "skip"):
                lines = output.pop((pkg, ""), [])
                if action == "fail":
                    failed_packages.append(pkg)
                    sys.stdout.write("".join(lines))  # the package's own output: a panic, FAIL
                else:  # its last line is go test's summary ("ok  pkg 1.2s")
                    sys.stdout.write(lines[-1] if lines else f"{action}\t{pkg}\n")
                sys.stdout.flush()
    rc = proc.returncode
    top = [s for s in skipped if "/" not in s[1]]  # subtests are counted with their test
    print(f"go test: {passed} passed, {failed} failed, {len(skipped)} skipped"
          f" ({len(top)} top-level)"
          + (f"; packages failed: {', '.join(failed_packages)}" if failed_packages else ""))
    for pkg, test, why in skipped:
        print(f"SKIPPED {pkg} {test}: {why}")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
