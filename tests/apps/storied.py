"""The app of the error-story tests: a step whose exception is re-raised through a
workflow (and through a step called by a step), so that a test can find the step's own
``raise`` line at every hop, and a step that fails once before it succeeds."""

from __future__ import annotations

import os
from typing import TypeVar

from blazing import Blazing, SyncBlazing

AppT = TypeVar("AppT", Blazing, SyncBlazing)


class StoryError(Exception):
    """A user exception that workers and clients can both import."""


def make_app(**options: object) -> Blazing:
    """The app; Redis from BLAZING_REDIS_URL unless given."""
    return register(Blazing(**options))


def register(app: AppT) -> AppT:
    """Declares the story's steps and workflow on ``app`` (a ``Blazing`` or a
    ``SyncBlazing``) and returns it."""

    @app.step
    async def innermost(order: str) -> None:
        raise StoryError(f"order {order} is not in stock")  # the step's own raise

    @app.step
    async def middle(order: str) -> None:
        await innermost(order)

    @app.workflow
    async def checkout(order: str) -> None:
        """Workflow -> step -> step: the exception crosses two hops back, then the client's."""
        await middle(order)

    @app.step(retries=1)
    def flaky(marker: str) -> str:
        """Fails on its first attempt (a marker file remembers it across processes)."""
        if not os.path.exists(marker):
            with open(marker, "w"):
                pass
            raise ConnectionResetError(f"first attempt for {marker}")
        return "second time lucky"

    return app


app = make_app()
