"""App settings: every option, its environment twin and its default, in one place."""

from __future__ import annotations

import math
import os
import re
import sys
import warnings
from collections.abc import Mapping
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
    "blocked_loop_seconds": 1.0,
    "history": True,
    "max_breadcrumbs": 1000,
    "max_lapses": 10,
    "retention_max_runs": 100_000,
    "janitor_seconds": 60.0,
    "outage_timeout": 300.0,
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
    if value < 0 or not math.isfinite(value):
        raise ConfigurationError(
            f"environment variable {name}={raw!r} must be a finite, non-negative number")
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


def _option_str(name: str, value: object) -> str | None:
    """A string option (None: unset); anything else is refused, naming the option."""
    if value is not None and not isinstance(value, str):
        raise ConfigurationError(
            f"{name}= must be a string, not {type(value).__name__} {value!r}")
    return value


def _option_number(name: str, value: object, env: str, default: float) -> float:
    """A non-negative, finite number option, else its environment twin, else the default."""
    if value is None:
        return env_number(env, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(
            f"{name}= must be a number, not {type(value).__name__} {value!r}")
    if value < 0 or not math.isfinite(value):
        raise ConfigurationError(f"{name}={value!r} must be a finite, non-negative number")
    return value


def _option_bool(name: str, value: object, env: str, default: bool) -> bool:
    """A bool option, else its environment twin, else the default."""
    if value is None:
        return env_bool(env, default)
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name}= must be True or False, not {type(value).__name__} "
                                 f"{value!r}")
    return value


def _given(name: str, value: object, env: str, resolved: object) -> str:
    """Where a value that failed a check came from, for its message: the option with its
    value (``value``, None if not given), else the environment variable with its text,
    else the default (``resolved``)."""
    if value is not None:
        return f"{name}={value!r}"
    if os.environ.get(env):
        return f"environment variable {env}={os.environ[env]!r}"
    return f"{name}={resolved!r} (the default)"


def _option_count(name: str, value: object, env: str, default: int | None = None) -> int:
    """A whole number of at least 1, else its environment twin, else the default."""
    n = _option_number(name, value, env, DEFAULTS[name] if default is None else default)
    if n < 1 or n != int(n):
        raise ConfigurationError(
            f"{_given(name, value, env, n)} must be a whole number "
            "of at least 1")
    return int(n)


def _option_seconds(name: str, value: object, env: str) -> float:
    """A positive number of seconds, else its environment twin, else the default."""
    n = _option_number(name, value, env, DEFAULTS[name])
    if n <= 0:
        raise ConfigurationError(
            f"{_given(name, value, env, n)} must be a positive "
            "number of seconds")
    return float(n)


def _option_retention(name: str, value: object, env: str, default: float) -> float:
    """A retention of at least 1 second, else its environment twin, else the default.

    The core keeps whole seconds, and reads 0 as "the default": a shorter value would
    silently keep runs for days instead of not at all."""
    n = _option_number(name, value, env, default)
    if n < 1:
        raise ConfigurationError(
            f"{_given(name, value, env, n)} must be at least 1 second")
    return n


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
    max_lapses: int = DEFAULTS["max_lapses"]
    retention_max_runs: int = DEFAULTS["retention_max_runs"]
    janitor_seconds: float = DEFAULTS["janitor_seconds"]
    outage_timeout: float = DEFAULTS["outage_timeout"]
    # Longest the event loop may go unanswered before the watchdog warns; 0: off.
    blocked_loop_seconds: float = DEFAULTS["blocked_loop_seconds"]
    # Keep the index of runs and the per-minute counts (runs(), stats()).
    history: bool = DEFAULTS["history"]
    # The code's breadcrumbs kept per run (the oldest go first, counted).
    max_breadcrumbs: int = DEFAULTS["max_breadcrumbs"]
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
            "max_lapses": self.max_lapses,
            "max_runs": self.retention_max_runs,
            "janitor_ms": max(1, int(self.janitor_seconds * 1000)),
            "outage_timeout_ms": max(1, int(self.outage_timeout * 1000)),
            "no_history": not self.history,
            "max_breadcrumbs": self.max_breadcrumbs,
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
            api_url: str | None = None, api_token: str | None = None,
            secret: str | bytes | None = None,
            namespace: str | None = None, local_workers: bool | None = None,
            lease_seconds: float | None = None, heartbeat_seconds: float | None = None,
            retention_seconds: float | None = None,
            failed_retention_seconds: float | None = None,
            max_value_bytes: int | None = None, drain_timeout: float | None = None,
            connect_timeout: float | None = None,
            blocked_loop_seconds: float | None = None, history: bool | None = None,
            max_breadcrumbs: int | None = None,
            max_lapses: int | None = None,
            retention_max_runs: int | None = None, janitor_seconds: float | None = None,
            outage_timeout: float | None = None,
            tls_ca_file: str | os.PathLike[str] | None = None,
            tls_cert_file: str | os.PathLike[str] | None = None,
            tls_key_file: str | os.PathLike[str] | None = None) -> Settings:
    """Resolve options against their environment twins and defaults; refuse bad values.

    Every option is checked for its type here, so a wrong one fails as
    :class:`ConfigurationError` naming it, not later as an ``AttributeError``.
    """
    redis_url = _option_str("redis_url", redis_url)
    api_url = _option_str("api_url", api_url)
    _option_str("api_token", api_token)
    namespace = _option_str("namespace", namespace)
    if worker_config is not None and not isinstance(worker_config, Mapping):
        raise ConfigurationError(
            f"worker_config= must be a dict, not {type(worker_config).__name__} "
            f"{worker_config!r}")
    if local_workers is not None and not isinstance(local_workers, bool):
        raise ConfigurationError(
            f"local_workers= must be True or False, not {type(local_workers).__name__} "
            f"{local_workers!r}")
    if secret is not None and not isinstance(secret, (str, bytes, bytearray, memoryview)):
        # The value itself is not repeated: it may be a real secret of the wrong type.
        raise ConfigurationError(
            f"secret= must be a str or bytes, not {type(secret).__name__}")
    if secret is not None and not secret:
        raise ConfigurationError("secret= must not be empty")
    if max_value_bytes is not None and (isinstance(max_value_bytes, bool)
                                        or not isinstance(max_value_bytes, int)
                                        or max_value_bytes < 1):
        raise ConfigurationError(
            f"max_value_bytes= must be a positive int, not {type(max_value_bytes).__name__} "
            f"{max_value_bytes!r}")
    url = redis_url or os.environ.get("BLAZING_REDIS_URL") or None
    url_label = "redis_url" if redis_url else "environment variable BLAZING_REDIS_URL"
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
            f"{url_label}={redact(url)!r} must start with one of {', '.join(REDIS_SCHEMES)}")

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
    interval = cfg.get("optimization_interval", 5)
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
            f"{_given('local_workers', local_workers, 'BLAZING_LOCAL_WORKERS', local)}"
            " needs a Redis store (redis_url= or BLAZING_REDIS_URL): "
            "on the embedded store nothing else would run the work")
    if secret is not None:
        codec.set_secret(secret)

    lease = _option_number("lease_seconds", lease_seconds, "BLAZING_LEASE_SECONDS",
                           DEFAULTS["lease_seconds"])
    beat = _option_number("heartbeat_seconds", heartbeat_seconds, "BLAZING_HEARTBEAT_SECONDS",
                          DEFAULTS["heartbeat_seconds"])
    if beat <= 0 or lease <= 0 or beat >= lease:
        beat_given = _given("heartbeat_seconds", heartbeat_seconds, "BLAZING_HEARTBEAT_SECONDS",
                            beat)
        lease_given = _given("lease_seconds", lease_seconds, "BLAZING_LEASE_SECONDS", lease)
        raise ConfigurationError(f"heartbeat ({beat_given}) must be positive and shorter "
                                 f"than the lease ({lease_given})")
    default_retention = DEFAULTS["retention_seconds" if url else "retention_seconds_embedded"]
    ns = namespace or os.environ.get("BLAZING_NAMESPACE") or DEFAULTS["namespace"]
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", ns):
        raise ConfigurationError(
            f"{_given('namespace', namespace or None, 'BLAZING_NAMESPACE', ns)} must be 1-64 "
            "letters, digits, '_', '.' or '-'")
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
        retention_seconds=_option_retention("retention_seconds", retention_seconds,
                                            "BLAZING_RETENTION_SECONDS", default_retention),
        failed_retention_seconds=_option_retention("failed_retention_seconds",
                                                   failed_retention_seconds,
                                                   "BLAZING_FAILED_RETENTION_SECONDS",
                                                   DEFAULTS["failed_retention_seconds"]),
        max_value_bytes=_option_count("max_value_bytes", max_value_bytes,
                                      "BLAZING_MAX_VALUE_BYTES", codec.DEFAULT_MAX_VALUE_BYTES),
        drain_timeout=_option_number("drain_timeout", drain_timeout, "BLAZING_DRAIN_TIMEOUT",
                                     DEFAULTS["drain_timeout"]),
        connect_timeout=_option_seconds("connect_timeout", connect_timeout,
                                        "BLAZING_CONNECT_TIMEOUT"),
        worker_config=cfg,
        blocked_loop_seconds=_option_number("blocked_loop_seconds", blocked_loop_seconds,
                                            "BLAZING_BLOCKED_LOOP_SECONDS",
                                            DEFAULTS["blocked_loop_seconds"]),
        history=_option_bool("history", history, "BLAZING_HISTORY", DEFAULTS["history"]),
        max_breadcrumbs=_option_count("max_breadcrumbs", max_breadcrumbs,
                                      "BLAZING_MAX_BREADCRUMBS"),
        max_lapses=_option_count("max_lapses", max_lapses, "BLAZING_MAX_LAPSES"),
        retention_max_runs=_option_count("retention_max_runs", retention_max_runs,
                                         "BLAZING_RETENTION_MAX_RUNS"),
        janitor_seconds=_option_seconds("janitor_seconds", janitor_seconds,
                                        "BLAZING_JANITOR_SECONDS"),
        outage_timeout=_option_seconds("outage_timeout", outage_timeout,
                                       "BLAZING_OUTAGE_TIMEOUT"),
        **tls,
    )


def _resolve_tls(url: str | None,
                 given: dict[str, str | os.PathLike[str] | None]) -> dict[str, str | None]:
    """The TLS files, from the arguments or their environment twins.

    They need a TLS URL (``rediss://``, ``rediss+sentinel://``, ``rediss+cluster://``).
    Without any Redis URL, given arguments are refused and environment twins ignored,
    like the other Redis settings' twins. The files themselves are read when the store
    opens, where a bad one is reported with its option and path; a file named by an
    environment twin that cannot be read is refused here, naming the variable.
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
        if source == env and not os.access(value, os.R_OK):
            # The core reads the files when the store opens and names the option; a
            # file named by the environment is checked here, so the message names it.
            raise ConfigurationError(f"environment variable {env}={value!r}: cannot read the "
                                     "file (missing, or not readable by this process)")
        out[name] = value
    return out
