"""What every ``blazing`` command shares: the store it reads, how it prints."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from blazing._native import Session
from blazing.errors import ConfigurationError
from blazing.inspector import Inspector
from blazing.settings import redact, resolve

# Exit codes.
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def add_store_options(p: argparse.ArgumentParser) -> None:
    """--redis-url and --namespace (with their environment twins)."""
    p.add_argument("--redis-url", default=argparse.SUPPRESS,
                   help="the Redis store (default: $BLAZING_REDIS_URL)")
    p.add_argument("--namespace", default=argparse.SUPPRESS,
                   help="the app's namespace (default: $BLAZING_NAMESPACE or blazing)")


def add_output_option(p: argparse.ArgumentParser) -> None:
    """-o text|json."""
    p.add_argument("-o", "--output", choices=("text", "json"), default="text",
                   help="text for people (default), json for scripts")


@contextmanager
def inspector(args: argparse.Namespace) -> Iterator[Inspector]:
    """An inspector over a session of its own: no runtime, no workers, no event loop."""
    url = getattr(args, "redis_url", None)
    settings = resolve(redis_url=url, namespace=getattr(args, "namespace", None),
                       local_workers=False) if (url or os.environ.get("BLAZING_REDIS_URL")) \
        else None
    if settings is None or not settings.redis_url:
        raise ConfigurationError(
            "this command reads a Redis store: pass --redis-url (or set BLAZING_REDIS_URL), "
            "and --namespace if the app uses one")
    session = Session({**settings.store_config(), "async": 0, "blocking": 0,
                       "inbox": f"cli-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"})
    try:
        yield Inspector(session)
    finally:
        session.close()


def store_label(args: argparse.Namespace, url: bool = True) -> str:
    """Where a command reads, for titles: the namespace and (with ``url``) the Redis URL,
    its password hidden."""
    where = getattr(args, "redis_url", None) or os.environ.get("BLAZING_REDIS_URL") or ""
    namespace = getattr(args, "namespace", None) or os.environ.get("BLAZING_NAMESPACE") or \
        "blazing"
    return f"namespace {namespace} on {redact(where)}" if where and url \
        else f"namespace {namespace}"


def print_json(value: Any) -> None:
    """Print JSON for scripts (datetimes and other objects as strings)."""
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Columns padded to their widest cell."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    return "\n".join(lines)


def ms(value: float | None) -> str:
    """A duration in ms, shortly."""
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    if value >= 10:
        return f"{value:.0f} ms"
    return f"{value:.2f} ms"
