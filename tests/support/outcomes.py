"""Collecting the outcomes of many runs under one deadline, for tests that count them."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcomes:
    """What became of each run: ``counts`` by kind ("ok", "wrong", "no answer", or the
    exception's type name), the status the store gave for each run with no answer,
    and the first few failures in words."""

    counts: Counter = field(default_factory=Counter)
    unanswered_status: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        """Keep a failure's description (only the first few: they are examples)."""
        if len(self.failures) < 5:
            self.failures.append(what)

    def __str__(self) -> str:
        text = str(dict(self.counts))
        if self.unanswered_status:
            text += f"; status of the runs with no answer: {dict(self.unanswered_status)}"
        if self.failures:
            text += "; first failures: " + " | ".join(self.failures)
        return text


def _status(handle: Any) -> str:
    """The run's status as the store tells it, or why it could not."""
    try:
        return handle.status_sync()
    except Exception as exc:  # noqa: BLE001 - a diagnostic, whatever went wrong
        return type(exc).__name__


def collect(handles: Sequence[Any], expected: Callable[[int], Any],
            timeout: float) -> Outcomes:
    """Wait for every handle's result, all within ``timeout`` seconds in total.

    ``expected(i)`` is the right result of ``handles[i]``. A run still without a
    result when the time is up counts as "no answer" (lost), with its status.
    """
    out = Outcomes()
    deadline = time.monotonic() + timeout
    for i, h in enumerate(handles):
        try:
            value = h.result_sync(timeout=max(deadline - time.monotonic(), 0.01))
        except TimeoutError:
            out.counts["no answer"] += 1
            status = _status(h)
            out.unanswered_status[status] += 1
            out.note(f"{h.unit_id}: no answer after {timeout:.0f} s (status {status})")
        except Exception as exc:  # noqa: BLE001 - counted by type, then asserted on
            out.counts[type(exc).__name__] += 1
            out.note(f"{h.unit_id}: {type(exc).__name__}: {exc}")
        else:
            if value == expected(i):
                out.counts["ok"] += 1
            else:
                out.counts["wrong"] += 1
                out.note(f"{h.unit_id}: {value!r}, not {expected(i)!r}")
    return out
