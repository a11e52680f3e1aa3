"""An app's connectors, by name: made from ``Blazing(connectors=...)``, started with the
process's workers, health-checked on the runtime's loop, and closed when it stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from blazing.connectors.base import Connector
from blazing.connectors.config import from_spec
from blazing.errors import ConnectorConfigError, ConnectorError

log = logging.getLogger("blazing.connectors")

#: Longest a connector's settings check (host resolution) may take at start.
VALIDATE_TIMEOUT = 30.0


class Connectors(Mapping[str, Connector]):
    """The connectors of one app: ``connectors["db"]``.

    Given values may be connector instances, the dict form (see
    :func:`blazing.connectors.config.from_spec`) or factories (callables returning
    a connector), called once per process when first needed, so a process that
    only submits runs never makes them.
    """

    def __init__(self, given: Mapping[str, Any] | None = None) -> None:
        if given is not None and not isinstance(given, Mapping):
            raise ConnectorConfigError(
                f"connectors= must be a dict of name to connector, not {type(given).__name__}")
        self._made: dict[str, Connector] = {}
        self._factories: dict[str, Callable[[], Any]] = {}
        self._order: list[str] = []
        for name, value in (given or {}).items():
            if not isinstance(name, str) or not name:
                raise ConnectorConfigError(f"connector names must be non-empty strings, "
                                           f"not {name!r}")
            self._order.append(name)
            if isinstance(value, Connector):
                self._made[name] = _named(name, value)
            elif isinstance(value, Mapping):
                self._made[name] = from_spec(name, value)
            elif callable(value):
                self._factories[name] = value
            else:
                raise ConnectorConfigError(
                    f"connector {name!r}: expected a connector, a dict with "
                    f"target_class_name, or a factory, not {type(value).__name__}")

    def _get(self, name: str) -> Connector:
        made = self._made.get(name)
        if made is not None:
            return made
        factory = self._factories.pop(name)
        try:
            value = factory()
        except ConnectorError:
            raise
        except Exception as exc:
            raise ConnectorConfigError(
                f"connector {name!r}: its factory failed: {type(exc).__name__}: {exc}") from exc
        if isinstance(value, Mapping):
            value = from_spec(name, value)
        if not isinstance(value, Connector):
            raise ConnectorConfigError(
                f"connector {name!r}: its factory returned {type(value).__name__}, "
                "not a connector")
        self._made[name] = _named(name, value)
        return self._made[name]

    def __getitem__(self, name: str) -> Connector:
        if name not in self._made and name not in self._factories:
            raise KeyError(f"no connector named {name!r} (known: "
                           f"{', '.join(self._order) or 'none'})")
        return self._get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def instances(self) -> dict[str, Connector]:
        """Every connector, made (factories called) now; what services receive."""
        return {name: self._get(name) for name in self._order}

    def made(self) -> list[Connector]:
        """The connectors made so far (only these can hold connections)."""
        return [self._made[n] for n in self._order if n in self._made]

    # ---------------------------------------------------------- lifecycle

    async def start(self, *, async_lane: bool) -> None:
        """Check every connector's settings; connect the eager ones. Runs on the
        runtime's loop when a process starts to run work; any failure names its
        connector (and stops the start)."""
        for conn in self.instances().values():
            try:
                await asyncio.wait_for(asyncio.to_thread(conn.validate), VALIDATE_TIMEOUT)
            except ConnectorError:
                raise
            except asyncio.TimeoutError:
                raise conn.config_error(
                    f"checking its settings took over {VALIDATE_TIMEOUT:.0f} s "
                    "(resolving the host?)") from None
            except Exception as exc:
                raise conn.config_error(f"{type(exc).__name__}: {exc}") from exc
            if conn.eager:
                try:
                    await conn.connect()
                    if not async_lane:
                        # A process without async workers keeps no loop pool: this
                        # was the start-up check; its threads connect at first use.
                        await conn.disconnect()
                except ConnectorError:
                    raise
                except Exception as exc:
                    raise conn.config_error(
                        f"cannot connect at start: {type(exc).__name__}: {exc}") from exc
                log.info("%s: connected at start", conn.describe())

    async def watch(self) -> None:
        """Health-check, every connector's ``health_check_interval``, the connections
        open on this loop; a failed check drops one, so the next use reconnects."""
        tasks = [asyncio.ensure_future(_watch_one(c)) for c in self.made()
                 if c.health_check_interval > 0]
        try:
            if tasks:
                await asyncio.gather(*tasks)
            else:
                await asyncio.Event().wait()  # nothing to watch: wait to be cancelled
        finally:
            for t in tasks:
                t.cancel()

    def release_thread(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Close what the calling (exiting) thread holds in every connector."""
        for conn in self.made():
            try:
                conn.release_thread(loop)
            except Exception:  # noqa: BLE001 - one connector's failure spares the others
                log.exception("%s: closing a thread's connections failed", conn.describe())

    async def close(self) -> None:
        """Close every connection of every connector in the process."""
        for conn in self.made():
            try:
                await conn.disconnect()
            except Exception:  # noqa: BLE001 - one connector's failure spares the others
                log.exception("%s: closing failed", conn.describe())

    def __repr__(self) -> str:
        return f"Connectors({', '.join(self._order)})"


async def _watch_one(conn: Connector) -> None:
    while True:
        await asyncio.sleep(conn.health_check_interval)  # the check period itself
        if conn.connected():
            await conn.health_check()


def _named(name: str, conn: Connector) -> Connector:
    if conn.name_given and conn.name != name:
        raise ConnectorConfigError(
            f"connector {name!r}: it was made with name={conn.name!r}; use the same name "
            "as its key")
    conn.name = name
    return conn
