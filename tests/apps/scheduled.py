"""The app the schedule tests run in real worker processes.

Its workflow ``tick`` runs on a ``Period`` (BLAZING_TEST_PERIOD seconds, default 1)
and appends one line per execution to BLAZING_TEST_JOURNAL: ``<unit> <pid>``, so a
test counts executions per tick exactly.
"""

from __future__ import annotations

import os

from blazing import Blazing, Period
from blazing.context import current


def _journal() -> None:
    path = os.environ.get("BLAZING_TEST_JOURNAL")
    ex = current.get()
    if not path or ex is None:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{ex.unit} {os.getpid()}\n".encode())  # O_APPEND: lines stay whole
    finally:
        os.close(fd)


def make_app(**options: object) -> Blazing:
    """The app: workers and test clients share it (Redis from BLAZING_REDIS_URL)."""
    app = Blazing(**options)

    @app.schedule(Period(seconds=float(os.environ.get("BLAZING_TEST_PERIOD", "1"))),
                  name="beat", args=("beat",))
    @app.workflow
    async def tick(tag: str) -> str:
        """One scheduled run: journaled."""
        _journal()
        return tag

    return app


app = make_app()
