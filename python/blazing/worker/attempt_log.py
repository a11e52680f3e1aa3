"""The worker's log of attempts that did not succeed: each failed or retried operation
gets one record on the ``blazing.worker`` logger, naming its run and step.

A failure the store will retry is logged at INFO (the run goes on); one that ends the
operation at WARNING, with its traceback. Whether it is retried is told the way the
store decides it: attempts are numbered from 1, and attempt ``n`` is retried while
``n <= retries`` unless retrying could not help. Records carry ``blazing_run`` and
``blazing_step`` as extra attributes, like the core's records on ``blazing.core``.
"""

from __future__ import annotations

import logging

log = logging.getLogger("blazing.worker")


def _exception_name(exc: BaseException) -> str:
    """The exception as ``Type: message`` (the type's module unless built in)."""
    cls = type(exc)
    name = cls.__qualname__
    if cls.__module__ != "builtins":
        name = f"{cls.__module__}.{name}"
    text = str(exc)
    return f"{name}: {text}" if text else name


def will_retry(attempt: int, retries: int, no_retry: bool = False) -> bool:
    """Whether the store retries a failed ``attempt`` (1-based) given ``retries``."""
    return not no_retry and attempt <= retries


def attempt_failed(kind: str, name: str, unit: str, path: str, attempt: int, retries: int,
                   exc: BaseException, no_retry: bool = False) -> None:
    """Log an attempt that raised ``exc``: INFO if it is retried, else WARNING."""
    extra = {"blazing_run": unit, "blazing_step": path}
    what = f"{kind} {name} (run {unit}, step {path})"
    if will_retry(attempt, retries, no_retry):
        log.info("%s attempt %d of %d failed with %s; retrying", what, attempt, retries + 1,
                 _exception_name(exc), extra=extra)
        return
    log.warning("%s failed (attempt %d of %d) with %s", what, attempt, retries + 1,
                _exception_name(exc), exc_info=exc, extra=extra)


def attempt_timed_out(kind: str, name: str, unit: str, path: str, attempt: int, retries: int,
                      message: str) -> None:
    """Log an attempt the engine stopped at its ``timeout=``: INFO if retried, else WARNING."""
    extra = {"blazing_run": unit, "blazing_step": path}
    what = f"{kind} {name} (run {unit}, step {path})"
    if will_retry(attempt, retries):
        log.info("%s attempt %d of %d failed with TimeoutError: %s; retrying", what, attempt,
                 retries + 1, message, extra=extra)
        return
    log.warning("%s failed (attempt %d of %d) with TimeoutError: %s", what, attempt, retries + 1,
                message, extra=extra)
