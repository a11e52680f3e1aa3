"""What is running right now: the operation whose code is on this stack.

Step calls made while an :class:`Execution` is current become durable child
operations of it, made through its :class:`CallHost` (the runtime implements
it); with none current, decorated functions are plain calls.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from blazing.definitions import Definition


class CallHost(Protocol):
    """Where a running operation's step calls go (the runtime that runs it)."""

    def call_child(self, ex: Execution, defn: Definition, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        """Make a durable child call: an awaitable on an event loop, else its result."""
        ...

    def breadcrumb(self, unit: str, path: str, at_ms: int, message: str,
                   metadata: bytes | None) -> None:
        """Note an event on an operation's timeline, without waiting on the store."""
        ...


class Execution:
    """One running attempt of an operation (a workflow or a step)."""

    __slots__ = ("host", "unit", "path", "depth", "name", "lane", "services", "_calls",
                 "waiting", "attempt")

    def __init__(self, host: CallHost, unit: str, path: str, depth: int, name: str,
                 lane: int, services: Any, attempt: int) -> None:
        self.host = host
        self.unit = unit
        self.path = path
        self.depth = depth
        self.name = name
        self.lane = lane
        self.services = services
        self.attempt = attempt
        self._calls = 0
        # Child calls not yet finished; while any are, this operation's slot
        # is lent back to its lane so nested calls cannot deadlock.
        self.waiting = 0

    def next_path(self) -> str:
        """Path of the next call this operation issues (same on every replay)."""
        self._calls += 1
        return f"{self.path}.{self._calls}"

    def __repr__(self) -> str:
        return f"<{self.name} {self.unit}/{self.path}>"


current: ContextVar[Execution | None] = ContextVar("blazing_execution", default=None)
