"""The dict form of a connector, as the examples write it:
``{"name", "target_class_name", "auth", "pool", "throttling"}``."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from blazing.connectors.base import Connector
from blazing.connectors.http import HTTPConnector
from blazing.connectors.sql import SQLConnector
from blazing.connectors.ssh import SSHConnector
from blazing.errors import ConnectorConfigError

#: ``target_class_name`` spellings and the classes they name.
CLASSES: dict[str, type[Connector]] = {
    "SQLConnector": SQLConnector,
    "SQLAlchemyConnector": SQLConnector,
    "HTTPConnector": HTTPConnector,
    "RESTConnector": HTTPConnector,
    "SSHConnector": SSHConnector,
}

SPEC_KEYS = frozenset({"name", "target_class_name", "auth", "pool", "throttling",
                       "options", "eager"})

# The pool dict's short spellings; the long ones pass as they are.
POOL_ALIASES = {
    "size": "pool_size", "overflow": "max_overflow", "recycle": "pool_recycle",
    "pre_ping": "pool_pre_ping", "timeout": "pool_timeout",
}


def connector_class(name: str, target: object) -> type[Connector]:
    """The class a ``target_class_name`` names: one of :data:`CLASSES`, or a
    ``package.module.Class`` (or ``package.module:Class``) subclass of Connector."""
    if not isinstance(target, str) or not target:
        raise ConnectorConfigError(
            f"connector {name!r}: target_class_name must be a class name such as "
            f"{', '.join(CLASSES)}, not {target!r}")
    if target in CLASSES:
        return CLASSES[target]
    if "." in target or ":" in target:
        module, _, attr = target.replace(":", ".").rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConnectorConfigError(
                f"connector {name!r}: target_class_name {target!r} cannot be imported "
                f"({type(exc).__name__}: {exc})") from None
        if isinstance(cls, type) and issubclass(cls, Connector):
            return cls
        raise ConnectorConfigError(
            f"connector {name!r}: target_class_name {target!r} is not a Connector subclass")
    raise ConnectorConfigError(
        f"connector {name!r}: unknown target_class_name {target!r}; known: "
        f"{', '.join(CLASSES)} (or a dotted path to a Connector subclass)")


def _section(name: str, spec: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = spec.get(key) or {}
    if not isinstance(value, Mapping):
        raise ConnectorConfigError(f"connector {name!r}: {key!r} must be a dict, not "
                                   f"{type(value).__name__}")
    return dict(value)


def from_spec(name: str, spec: Mapping[str, Any]) -> Connector:
    """Build a connector from its dict form (keys: ``name``, ``target_class_name``,
    ``auth``, ``pool``, ``throttling``, ``options``, ``eager``). ``auth`` and
    ``options`` become keyword arguments of the class; ``pool`` too, with
    ``size``, ``overflow``, ``recycle``, ``pre_ping`` and ``timeout`` read as
    ``pool_size``, ``max_overflow``, ``pool_recycle``, ``pool_pre_ping`` and
    ``pool_timeout``. Bad settings raise :class:`ConnectorConfigError` naming it."""
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise ConnectorConfigError(
            f"connector {name!r}: unknown keys {sorted(unknown)}; known: {sorted(SPEC_KEYS)}")
    given = spec.get("name", name)
    if given != name:
        raise ConnectorConfigError(
            f"connector {name!r}: its dict says name={given!r}; use the same name as its key")
    if "target_class_name" not in spec:
        raise ConnectorConfigError(f"connector {name!r}: target_class_name is missing; one "
                                   f"of {', '.join(CLASSES)}")
    cls = connector_class(name, spec["target_class_name"])
    kwargs: dict[str, Any] = {}
    for key, value in _section(name, spec, "pool").items():
        kwargs[POOL_ALIASES.get(key, key)] = value
    for section in ("auth", "options"):
        for key, value in _section(name, spec, section).items():
            if key in kwargs:
                raise ConnectorConfigError(f"connector {name!r}: {key!r} is given twice")
            kwargs[key] = value
    if spec.get("throttling") is not None:
        kwargs["throttling"] = spec["throttling"]
    if "eager" in spec:
        kwargs["eager"] = spec["eager"]
    try:
        return cls(name=name, **kwargs)
    except TypeError as exc:
        # An unexpected keyword: say which connector, never the values given.
        raise ConnectorConfigError(f"connector {name!r} ({cls.__name__}): {exc}") from None
