"""App settings: every option, its environment twin and its default, in one place."""

from __future__ import annotations

import os
import re
import sys
import warnings
from dataclasses import dataclass
from typing import Any

from blazing import codec
from blazing.errors import ConfigurationError

WORKER_KEYS = {"async_workers", "blocking_workers", "auto_optimize", "optimization_interval",
               "async_concurrency"}

DEFAULTS: dict[str, Any] = {
    "async_workers": 4,
    "async_concurrency": 64,
    "blocking_workers": 4,
    "lease_seconds": 30.0,
    "heartbeat_seconds": 5.0,
    "retention_seconds_embedded": 3600,
    "retention_seconds": 7 * 24 * 3600,
    "failed_retention_seconds": 30 * 24 * 3600,
    "drain_timeout": 30.0,
    "namespace": "blazing",
    "connect_timeout": 5.0,
    "max_lapses": 5,
    "retention_max_runs": 100_000,
    "janitor_seconds": 60.0,
    "outage_timeout": 300.0,
}

REDIS_SCHEMES = ("redis://", "rediss://", "redis+sentinel://", "redis+cluster://")


def redact(url: str) -> str:
    """A URL with its password hidden, for messages and logs."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def env_number(name: str, default: float) -> float:
    """A non-negative number from the environment, or the default."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {name}={raw!r} is not a number") from None
    if value < 0:
        raise ConfigurationError(f"environment variable {name}={raw!r} must not be negative")
    return value


def env_bool(name: str, default: bool) -> bool:
    """A boolean from the environment (1/0, true/false, yes/no, on/off)."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"environment variable {name}={raw!r} is not a boolean")


def _count(config: dict[str, Any], key: str, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(
            f"worker_config[{key!r}] must be a non-negative int, not {value!r}")
    return value


def _caller_stacklevel() -> int:
    # Point warnings at the user's Blazing(...) line, past our own frames.
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("blazing."):
        level += 1
        frame = frame.f_back
    return level


@dataclass
class Settings:
    """Resolved settings of one app."""

    redis_url: str | None
    namespace: str
    local_workers: bool
    async_workers: int
    async_concurrency: int
    blocking_workers: int
    auto_optimize: bool
    optimization_interval: float
    lease_seconds: float
    heartbeat_seconds: float
    retention_seconds: float
    failed_retention_seconds: float
    max_value_bytes: int
    drain_timeout: float
    connect_timeout: float
    max_lapses: int
    retention_max_runs: int
    janitor_seconds: float
    outage_timeout: float
    worker_config: dict[str, Any]

    @property
    def async_slots(self) -> int:
        """Async operations this process runs at once."""
        return self.async_workers * self.async_concurrency if self.local_workers else 0

    @property
    def blocking_threads(self) -> int:
        """Blocking threads this process runs."""
        return self.blocking_workers if self.local_workers else 0

    def store_config(self) -> dict[str, Any]:
        """The store part of the Go engine's configuration."""
        cfg: dict[str, Any] = {
            "lease_ms": int(self.lease_seconds * 1000),
            "heartbeat_ms": int(self.heartbeat_seconds * 1000),
            "retention_s": int(self.retention_seconds),
            "failed_retention_s": int(self.failed_retention_seconds),
            "max_lapses": self.max_lapses,
            "max_runs": self.retention_max_runs,
            "janitor_ms": max(1, int(self.janitor_seconds * 1000)),
            "outage_timeout_ms": max(1, int(self.outage_timeout * 1000)),
        }
        if self.redis_url:
            cfg.update(store="redis", url=self.redis_url, namespace=self.namespace,
                       connect_timeout_ms=int(self.connect_timeout * 1000))
        else:
            cfg["store"] = "memory"
            # Embedded mode: the engine runs the optimizer over this process's
            # async slots and blocking threads (with Redis, the foreman does).
            cfg.update(auto_optimize=self.auto_optimize and self.local_workers,
                       optimization_interval_ms=max(1, int(self.optimization_interval * 1000)),
                       async_workers=self.async_workers,
                       blocking_workers=self.blocking_workers,
                       async_concurrency=self.async_concurrency)
        return cfg


def resolve(*, redis_url: str | None = None, worker_config: dict[str, Any] | None = None,
            api_url: str | None = None, secret: str | bytes | None = None,
            namespace: str | None = None, local_workers: bool | None = None,
            lease_seconds: float | None = None, heartbeat_seconds: float | None = None,
            retention_seconds: float | None = None,
            failed_retention_seconds: float | None = None,
            max_value_bytes: int | None = None, drain_timeout: float | None = None,
            connect_timeout: float | None = None, max_lapses: int | None = None,
            retention_max_runs: int | None = None, janitor_seconds: float | None = None,
            outage_timeout: float | None = None) -> Settings:
    """Resolve options against their environment twins and defaults; refuse bad values."""
    url = redis_url or os.environ.get("BLAZING_REDIS_URL") or None
    if api_url:
        if api_url.startswith(("redis://", "rediss://")):
            url = url or api_url
        else:
            warnings.warn(
                f"api_url={api_url!r} is ignored: Blazing Flow talks to Redis directly "
                "(pass a redis:// URL) or runs embedded in this process",
                UserWarning, stacklevel=_caller_stacklevel())
    if url is not None and not url.startswith(REDIS_SCHEMES):
        raise ConfigurationError(
            f"redis_url={redact(url)!r} must start with one of {', '.join(REDIS_SCHEMES)}")

    cfg = dict(worker_config or {})
    unknown = set(cfg) - WORKER_KEYS
    if unknown:
        raise ConfigurationError(
            f"unknown worker_config keys {sorted(unknown)}; known: {sorted(WORKER_KEYS)}")
    async_workers = _count(cfg, "async_workers", DEFAULTS["async_workers"])
    concurrency = _count(cfg, "async_concurrency", DEFAULTS["async_concurrency"])
    blocking = _count(cfg, "blocking_workers", DEFAULTS["blocking_workers"])
    auto = cfg.get("auto_optimize", True)
    if not isinstance(auto, bool):
        raise ConfigurationError(f"worker_config['auto_optimize'] must be a bool, not {auto!r}")
    interval = cfg.get("optimization_interval", 30)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
        raise ConfigurationError(
            f"worker_config['optimization_interval'] must be a positive number of seconds, "
            f"not {interval!r}")

    local = local_workers if local_workers is not None else env_bool(
        "BLAZING_LOCAL_WORKERS", True)
    if local and async_workers == 0:
        raise ConfigurationError("worker_config['async_workers'] must be at least 1: "
                                 "workflows run on async workers")
    if not url and not local:
        raise ConfigurationError(
            "local_workers=False needs a Redis store (redis_url= or BLAZING_REDIS_URL): "
            "on the embedded store nothing else would run the work")
    if secret is not None:
        codec.set_secret(secret)

    def num(value: float | None, env: str, default: float) -> float:
        return value if value is not None else env_number(env, default)

    lease = num(lease_seconds, "BLAZING_LEASE_SECONDS", DEFAULTS["lease_seconds"])
    beat = num(heartbeat_seconds, "BLAZING_HEARTBEAT_SECONDS", DEFAULTS["heartbeat_seconds"])
    if beat <= 0 or lease <= 0 or beat >= lease:
        raise ConfigurationError(
            f"heartbeat ({beat} s) must be positive and shorter than the lease ({lease} s)")
    default_retention = DEFAULTS["retention_seconds" if url else "retention_seconds_embedded"]

    def positive_int(value: int | None, env: str, name: str) -> int:
        n = num(value, env, DEFAULTS[name])
        if isinstance(n, bool) or n != int(n) or n < 1:
            raise ConfigurationError(f"{name} must be a whole number of at least 1, not {n!r}")
        return int(n)

    def positive(value: float | None, env: str, name: str) -> float:
        n = num(value, env, DEFAULTS[name])
        if isinstance(n, bool) or n <= 0:
            raise ConfigurationError(f"{name} must be a positive number of seconds, not {n!r}")
        return float(n)
    ns = namespace or os.environ.get("BLAZING_NAMESPACE") or DEFAULTS["namespace"]
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", ns):
        raise ConfigurationError(
            f"namespace {ns!r} must be 1-64 letters, digits, '_', '.' or '-'")
    return Settings(
        redis_url=url,
        namespace=ns,
        local_workers=local,
        async_workers=async_workers,
        async_concurrency=concurrency,
        blocking_workers=blocking,
        auto_optimize=auto,
        optimization_interval=float(interval),
        lease_seconds=lease,
        heartbeat_seconds=beat,
        retention_seconds=num(retention_seconds, "BLAZING_RETENTION_SECONDS", default_retention),
        failed_retention_seconds=num(failed_retention_seconds,
                                     "BLAZING_FAILED_RETENTION_SECONDS",
                                     DEFAULTS["failed_retention_seconds"]),
        max_value_bytes=int(num(max_value_bytes, "BLAZING_MAX_VALUE_BYTES",
                                codec.DEFAULT_MAX_VALUE_BYTES)),
        drain_timeout=num(drain_timeout, "BLAZING_DRAIN_TIMEOUT", DEFAULTS["drain_timeout"]),
        connect_timeout=num(connect_timeout, "BLAZING_CONNECT_TIMEOUT",
                            DEFAULTS["connect_timeout"]),
        max_lapses=positive_int(max_lapses, "BLAZING_MAX_LAPSES", "max_lapses"),
        retention_max_runs=positive_int(retention_max_runs, "BLAZING_RETENTION_MAX_RUNS",
                                        "retention_max_runs"),
        janitor_seconds=positive(janitor_seconds, "BLAZING_JANITOR_SECONDS", "janitor_seconds"),
        outage_timeout=positive(outage_timeout, "BLAZING_OUTAGE_TIMEOUT", "outage_timeout"),
        worker_config=cfg,
    )
