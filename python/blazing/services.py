"""Per-process service instances, handed to steps and workflows by class name."""

from __future__ import annotations

from typing import Any

from blazing.base import BaseService


class Services(dict[str, BaseService]):
    """The ``services`` mapping: ``services["Name"]`` and ``services.get("Name")``."""

    def __missing__(self, key: str) -> BaseService:
        known = ", ".join(sorted(self)) or "none"
        raise KeyError(
            f"no service named {key!r} is registered with this app (registered: {known}); "
            "decorate the class with @app.service"
        )

    def __repr__(self) -> str:
        return f"Services({', '.join(sorted(self))})"


async def create_services(classes: dict[str, type[BaseService]],
                          connectors: dict[str, Any]) -> Services:
    """Create one instance of each service class, in registration order."""
    out = Services()
    for name, cls in classes.items():
        out[name] = await cls.create(connectors)
    return out
