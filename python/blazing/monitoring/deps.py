"""The optional packages of the monitoring tools, imported when a tool needs one."""

from __future__ import annotations

import importlib
from types import ModuleType

from blazing.errors import BlazingError

EXTRA = "pip install 'blazing[monitoring]'"


class MissingExtra(BlazingError, ImportError):
    """A monitoring tool needs a package of the ``monitoring`` extra that is not installed."""


def need(module: str, what: str) -> ModuleType:
    """Import ``module`` for ``what`` (a tool or an output), or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise MissingExtra(f"{what} needs the {package} package ({exc}): {EXTRA}") from None
