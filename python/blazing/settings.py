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
}

REDIS_SCHEMES = ("redis://", "rediss://", "redis+sentinel://", "rediss+sentinel://",
                 "redis+cluster://", "rediss+cluster://")

#: The TLS settings, each with its environment twin. The same names are query
#: options of a ``rediss`` URL, which win over these.
TLS_SETTINGS = {
    "tls_ca_file": "BLAZING_TLS_CA_FILE",
    "tls_cert_file": "BLAZING_TLS_CERT_FILE",
    "tls_key_file": "BLAZING_TLS_KEY_FILE",
}


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
    worker_config: dict[str, Any]
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None

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
        }
        if self.redis_url:
            cfg.update(store="redis", url=self.redis_url, namespace=self.namespace,
                       connect_timeout_ms=int(self.connect_timeout * 1000))
            cfg.update({k: v for k in TLS_SETTINGS if (v := getattr(self, k))})
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
            connect_timeout: float | None = None,
            tls_ca_file: str | os.PathLike[str] | None = None,
            tls_cert_file: str | os.PathLike[str] | None = None,
            tls_key_file: str | os.PathLike[str] | None = None) -> Settings:
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

    tls = _resolve_tls(url, {"tls_ca_file": tls_ca_file, "tls_cert_file": tls_cert_file,
                             "tls_key_file": tls_key_file})

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
        worker_config=cfg,
        **tls,
    )


def _resolve_tls(url: str | None,
                 given: dict[str, str | os.PathLike[str] | None]) -> dict[str, str | None]:
    """The TLS files, from the arguments or their environment twins.

    They need a TLS URL (``rediss://``, ``rediss+sentinel://``, ``rediss+cluster://``).
    Without any Redis URL, given arguments are refused and environment twins ignored,
    like the other Redis settings' twins. The files themselves are read when the store
    opens, where a bad one is reported with its option and path.
    """
    out: dict[str, str | None] = {}
    for name, env in TLS_SETTINGS.items():
        arg = given[name]
        value: str | None
        if arg is not None:
            try:
                path = os.fspath(arg)
            except TypeError:
                path = None
            if not isinstance(path, str) or not path:
                raise ConfigurationError(f"{name}= must be a non-empty path, not {arg!r}")
            value, source = path, f"{name}="
        else:
            value, source = os.environ.get(env) or None, env
        if value is None:
            continue
        if not url:
            if source == env:
                continue
            raise ConfigurationError(f"{source} needs a Redis store over TLS (a rediss:// "
                                     "redis_url): the embedded store makes no connection")
        if not url.startswith("rediss"):
            raise ConfigurationError(
                f"{source} is set but redis_url={redact(url)!r} does not use TLS: "
                "TLS options need rediss:// (or rediss+sentinel://, rediss+cluster://)")
        out[name] = value
    return out
