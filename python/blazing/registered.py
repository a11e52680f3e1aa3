"""Read-only views of what an app registered: its steps, workflows and services by name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from blazing.definitions import Definition


class Registered(Mapping[str, Any]):
    """A live, read-only mapping over one kind of an app's registrations.

    It reads the app's own registry on every access, so a step defined after the
    view was taken shows up in it; it has no way to add, replace or remove one
    (``app.step`` and friends do that).
    """

    __slots__ = ("_kind", "_source")

    def __init__(self, source: Mapping[str, Any], kind: str) -> None:
        """``source`` is the app's registry; ``kind`` is "step", "workflow" or "service"
        (services come from a registry of classes, the others from definitions)."""
        self._source = source
        self._kind = kind

    def _value(self, item: Any) -> Any:
        if isinstance(item, Definition):
            return item.wrapper if item.kind == self._kind else None
        return item if self._kind == "service" else None

    def __getitem__(self, name: str) -> Any:
        value = self._value(self._source.get(name)) if isinstance(name, str) else None
        if value is None:
            known = ", ".join(self) or "none"
            raise KeyError(f"no {self._kind} named {name!r} (registered: {known})")
        return value

    def __iter__(self) -> Iterator[str]:
        # A copy: a registration on another thread must not break an iteration here.
        return iter([name for name, item in list(self._source.items())
                     if self._value(item) is not None])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"<{self._kind}s: {', '.join(self) or 'none'}>"
