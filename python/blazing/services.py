"""Services: the base class users subclass, and the per-process instances that steps
and workflows receive by class name (``services["Name"]``)."""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

S = TypeVar("S", bound="BaseService")


class BaseService:
    """Base class of services registered with ``@app.service``.

    One instance lives per worker process and is created with the dict of
    live connectors. Subclasses may define ``__init__(self, connectors)``,
    ``__init__(self, connector_instances=None)`` calling ``super().__init__``,
    ``__init__(self)``, or no ``__init__``; async set-up goes in
    :meth:`_async_init`.
    """

    def __init__(self, connector_instances: dict[str, Any] | None = None) -> None:
        self.connectors: dict[str, Any] = dict(connector_instances or {})
        self._connectors = self.connectors

    async def _async_init(self) -> None:
        """Async set-up run once by :meth:`create`; override to open resources."""

    @classmethod
    async def create(cls: type[S], connectors: dict[str, Any] | None = None) -> S:
        """Build an instance with ``connectors`` and await its :meth:`_async_init`."""
        connectors = dict(connectors or {})
        instance = _construct(cls, connectors)
        if not hasattr(instance, "connectors"):
            # A subclass __init__ that skipped super().__init__ still gets them.
            instance.connectors = connectors
            instance._connectors = connectors
        result = instance._async_init()
        if inspect.isawaitable(result):
            await result
        return instance


def _construct(cls: type[S], connectors: dict[str, Any]) -> S:
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return cls(connectors)
    params = [p for p in list(sig.parameters.values())[1:]
              if p.kind not in (p.VAR_KEYWORD,)]
    if not params:
        return cls()
    first = params[0]
    if first.kind == first.KEYWORD_ONLY:
        return cls(**{first.name: connectors})
    return cls(connectors)


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
