"""The apps alive in this process by name, so that making an app again replaces it.

A notebook cell ``app = SyncBlazing()`` run a second time, a module reloaded, a
Django ``ready()`` run twice: each makes a new app where the old one still runs its
threads and engine. Two apps are *the same app* when they are made by the same module
(the ``__name__`` of the code that calls ``Blazing(...)``: ``__main__`` in a script or a
notebook) for the same store (the Redis URL, or the embedded store), the same
namespace and the same role (serving work, or a client with ``local_workers=False``:
a client and a worker of one namespace in one module are two apps). Making one
stops the earlier one of that name (its running work has ``drain_timeout`` to
finish, then its threads and engine are gone) and retires it: it refuses to start
again, saying which app replaced it. Apps that must live side by
side in one module take different namespaces.
"""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from blazing.settings import redact

if TYPE_CHECKING:
    from blazing.settings import Settings

log = logging.getLogger("blazing.app")


@dataclass(frozen=True)
class AppName:
    """What makes two apps the same app in one process."""

    module: str
    store: str  # the Redis URL as given, "" for the embedded store
    namespace: str
    serves: bool  # local_workers: a client and a serving app are not the same app

    def describe(self) -> str:
        """For messages: the module, namespace and store (the URL's password hidden)."""
        where = f"Redis {redact(self.store)}" if self.store else "the embedded store"
        return f"module {self.module}, namespace {self.namespace!r} on {where}"


def caller_module() -> str:
    """The ``__name__`` of the first frame outside this package: the module whose code
    makes the app (a user's subclass of ``Blazing`` counts as that user's code)."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name != "blazing" and not name.startswith("blazing."):
            return str(name)
        frame = frame.f_back  # type: ignore[assignment]
    return "__main__"


def name_for(settings: Settings, module: str) -> AppName:
    """The name of an app made in ``module`` with these settings."""
    return AppName(module, settings.redis_url or "", settings.namespace, settings.local_workers)


class Runtime(Protocol):
    """What this registry needs of an app's runtime (``blazing.runtime.Runtime``, which
    this layer does not import)."""

    started: bool
    settings: Settings

    def retire(self, reason: str) -> None: ...
    def on_runtime_thread(self) -> bool: ...
    def stop(self, timeout: float) -> None: ...


_lock = threading.Lock()
_alive: dict[AppName, weakref.ref[Runtime]] = {}


def claim(name: AppName, runtime: Runtime) -> None:
    """Make ``runtime`` the app of ``name`` in this process; stop and retire the one
    that had it (an app the caller no longer holds is simply forgotten)."""
    with _lock:
        previous_ref = _alive.get(name)
        _alive[name] = weakref.ref(runtime)
    previous = previous_ref() if previous_ref is not None else None
    if previous is None or previous is runtime:
        return
    previous.retire(f"it was replaced by a newer app of the same name ({name.describe()}); "
                    "use the new app, or give apps that must run side by side in one "
                    "module different namespaces")
    if not previous.started:
        return
    if previous.on_runtime_thread():
        log.warning("an app made inside one of its own steps cannot stop the app it "
                    "replaces (%s): that one runs on until the process ends", name.describe())
        return
    log.info("replacing the app of %s: stopping the previous one (its running work has "
             "up to %s s to finish)", name.describe(), previous.settings.drain_timeout)
    previous.stop(previous.settings.drain_timeout)
