"""Blazing Flow: durable workflows and a fast task queue, with a Go core.

    from blazing import Blazing, SyncBlazing, BaseService
"""

from blazing.app import Blazing, SyncBlazing
from blazing.base import BaseService
from blazing.errors import (
    BlazingError,
    ConfigurationError,
    DefinitionError,
    RemoteError,
    RunCancelled,
    UnknownNameError,
)
from blazing.run import RemoteRun
from blazing.schedules import ScheduleNotFound
from blazing.triggers import Cron, Period
from blazing.util import log_breadcrumb

__all__ = [
    "BaseService",
    "Blazing",
    "BlazingError",
    "ConfigurationError",
    "Cron",
    "DefinitionError",
    "RemoteError",
    "Period",
    "RemoteRun",
    "RunCancelled",
    "ScheduleNotFound",
    "SyncBlazing",
    "UnknownNameError",
    "log_breadcrumb",
]

__version__ = "0.1.0"
