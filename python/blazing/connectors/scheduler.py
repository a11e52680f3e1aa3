"""``SchedulerConnector``: the original's way to schedule workflows, kept working.

    from blazing.connectors import SchedulerConnector, Cron, Period

    scheduler = SchedulerConnector(app)
    scheduler.schedule(nightly_report, Cron("0 2 * * *", tz="Europe/Paris"))
    scheduler.schedule("heartbeat", Period(seconds=30), args=("ping",))

It holds no connection: it is a thin front on the app's schedules
(:meth:`blazing.app.BaseApp.schedule`), so both forms declare the same schedules and
every rule of docs/api.md ("Schedules") applies. ``connect``, ``disconnect`` and
``health_check`` exist so that code written for the original's connectors runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from blazing.errors import ConfigurationError
from blazing.schedules import DEFAULT_CATCH_UP, Schedule, ScheduleInfo
from blazing.triggers import Cron, Period

if TYPE_CHECKING:
    from blazing.app import BaseApp


class SchedulerConnector:
    """Schedules workflows of one app on :class:`Cron` or :class:`Period` triggers."""

    def __init__(self, app: BaseApp | None = None) -> None:
        self._app = app

    def bind(self, app: BaseApp) -> SchedulerConnector:
        """Attach to an app (when it was not given to the constructor); returns self."""
        self._app = app
        return self

    @property
    def app(self) -> BaseApp:
        """The app whose workflows it schedules."""
        if self._app is None:
            raise ConfigurationError(
                "SchedulerConnector has no app: create it as SchedulerConnector(app) or call "
                "scheduler.bind(app)")
        return self._app

    def schedule(self, workflow: str | Callable[..., Any], trigger: Cron | Period, *,
                 name: str | None = None, args: tuple[Any, ...] | list[Any] = (),
                 kwargs: dict[str, Any] | None = None, overlap: bool = False,
                 catch_up: float | None = DEFAULT_CATCH_UP) -> Schedule:
        """Run ``workflow`` (a decorated function or its name) at each tick of ``trigger``."""
        return self.app.schedule(workflow, trigger, name=name, args=args, kwargs=kwargs,
                                 overlap=overlap, catch_up=catch_up)

    add = schedule  # the name some of the original's examples use

    def list(self) -> list[ScheduleInfo]:
        """Every schedule in the app's store."""
        return self.app.schedules()

    def pause(self, name: str) -> ScheduleInfo:
        """Pause a schedule for every process."""
        return self.app.pause_schedule(name)

    def resume(self, name: str) -> ScheduleInfo:
        """Resume a paused schedule."""
        return self.app.resume_schedule(name)

    async def connect(self) -> None:
        """Nothing to connect: schedules live in the app's store."""

    async def disconnect(self) -> None:
        """Nothing to close."""

    async def health_check(self) -> bool:
        """Always healthy: it holds no connection."""
        return True


__all__ = ["Cron", "Period", "SchedulerConnector"]
