"""The value codec: how arguments, results and errors cross processes.

Every value is one msgpack document. msgpack carries None, bool, int (64-bit),
float, str, bytes, list and dict natively; the types below travel as msgpack
extension types (the "ext code table", fixed, part of the wire format):

====  ===================  ===========================================================
code  Python type          ext payload
====  ===================  ===========================================================
1     tuple/set/frozenset  1-byte marker (0 tuple, 1 set, 2 frozenset), written as the
                           first element of an ordinary msgpack array of the items
2     datetime             >HBBBBBIB (year .. microsecond, fold) + tz
3     date                 >HBB (year, month, day)
4     time                 >BBBIB (hour, minute, second, microsecond, fold) + tz
5     timedelta            >iII (days, seconds, microseconds)
6     Decimal              str(value) in ASCII (exact, also NaN/sNaN/Infinity/-0)
7     UUID                 the 16 bytes
8     int beyond 64 bits   signed big-endian two's complement
9     anything else        HMAC-SHA256(secret, pickle) || pickle (protocol 5)
====  ===================  ===========================================================

The "tz" suffix is empty for naive values, ``0x01 + >q offset_us`` for an
unnamed fixed offset (timezone.utc included), ``0x02 + >q offset_us + name``
for a named ``datetime.timezone`` and ``0x03 + key`` for a ``ZoneInfo``. Values
with any other tzinfo class (pytz, dateutil, ...) go through the pickle
fallback as a whole so they come back unchanged.

Types are matched exactly: subclasses (OrderedDict, defaultdict, namedtuple,
IntEnum, StrEnum, numpy.float64, pandas.Timestamp, ...) go through the signed
pickle fallback and come back as their own type. bytearray and memoryview are
written as msgpack bin and come back as bytes.

Pickled data is only unpickled after its HMAC has been verified with the
deployment secret (``BLAZING_SECRET``, or a random per-process secret when the
variable is unset, which is enough for embedded mode only).
"""

import contextlib
import hmac
import os
import pickle
import reprlib
import struct
import sys
import threading
import traceback
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from msgpack import ExtType, Packer, unpackb

__all__ = [
    "DEFAULT_MAX_VALUE_BYTES",
    "EXT_BIGINT",
    "EXT_CONTAINER",
    "EXT_DATE",
    "EXT_DATETIME",
    "EXT_DECIMAL",
    "EXT_PICKLE",
    "EXT_TIME",
    "EXT_TIMEDELTA",
    "EXT_UUID",
    "CodecError",
    "MalformedPayloadError",
    "RemoteError",
    "RemoteTraceback",
    "SerializationError",
    "SignatureError",
    "ValueTooLargeError",
    "decode",
    "decode_exception",
    "dumps_signed",
    "encode",
    "encode_exception",
    "loads_signed",
    "set_secret",
]

DEFAULT_MAX_VALUE_BYTES = 64 * 1024 * 1024
"""Largest encoded value :func:`encode` accepts unless told otherwise
(override per process with env ``BLAZING_MAX_VALUE_BYTES``)."""

# Ext type codes; part of the wire format, never renumber.
EXT_CONTAINER = 1
EXT_DATETIME = 2
EXT_DATE = 3
EXT_TIME = 4
EXT_TIMEDELTA = 5
EXT_DECIMAL = 6
EXT_UUID = 7
EXT_BIGINT = 8
EXT_PICKLE = 9

_SIG_LEN = 32  # HMAC-SHA256 digest size
_PICKLE_PROTOCOL = 5


# --------------------------------------------------------------------------- errors


class CodecError(ValueError):
    """Base class of every error raised by this module."""


class SerializationError(CodecError):
    """The value cannot be encoded at all (for example a lambda or a generator)."""


class SignatureError(CodecError):
    """A pickled payload was refused because it is unsigned, truncated or tampered."""


class MalformedPayloadError(CodecError):
    """The data is not a valid encoded value."""


class ValueTooLargeError(CodecError):
    """The encoded value is larger than the allowed maximum."""

    def __init__(self, size: int, limit: int, context: str = "") -> None:
        prefix = f"{context}: " if context else ""
        super().__init__(
            f"{prefix}encoded value is {size} bytes, over the limit of {limit} bytes "
            "(pass max_bytes= or set BLAZING_MAX_VALUE_BYTES to allow more; "
            "large data is better stored elsewhere and passed by reference)"
        )
        self.size = size
        self.limit = limit
        self.context = context

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its fields, so it crosses processes with its own type.
        return (type(self), (self.size, self.limit, self.context))


def with_context(exc: CodecError, context: str) -> CodecError:
    """The same kind of error, its message prefixed with where it happened."""
    if isinstance(exc, ValueTooLargeError):
        return ValueTooLargeError(exc.size, exc.limit, context)
    return type(exc)(f"{context}: {exc}")


class RemoteError(Exception):
    """An exception raised in another process whose type cannot be rebuilt here."""

    def __init__(self, type_name: str, message: str, remote_traceback: str = "") -> None:
        # All three in args so the exception pickles and unpickles unchanged.
        super().__init__(type_name, message, remote_traceback)
        self.type_name = type_name
        self.message = message
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        name = self.type_name.removeprefix("builtins.")
        return f"{name}: {self.message}" if self.message else name


class RemoteTraceback(Exception):
    """The traceback of an exception as it was raised in another process or thread.

    A decoded exception carries it as its ``__cause__``, so that Python prints the
    remote frames (down to the step's own ``raise``) above the local ones, as
    ``concurrent.futures`` does for a process pool; each hop (step, workflow,
    client) adds its frames below the ones before.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text.rstrip()}\n"""'


# --------------------------------------------------------------------------- secret

_secret: bytes | None = None
_secret_is_random = False
_secret_lock = threading.Lock()


def set_secret(secret: bytes | str | None) -> None:
    """Set the HMAC secret that signs and verifies pickled values in this process.

    ``None`` forgets the current secret; the next use reads ``BLAZING_SECRET``
    again (or makes a new random one). Payloads signed with an earlier secret
    are refused afterwards.
    """
    global _secret, _secret_is_random
    if secret is None:
        key = None
    elif isinstance(secret, str):
        key = secret.encode("utf-8")
    elif isinstance(secret, (bytes, bytearray, memoryview)):
        key = bytes(secret)
    else:
        raise TypeError(f"secret must be bytes or str, not {type(secret).__name__}")
    if key is not None and not key:
        raise ValueError("secret must not be empty")
    with _secret_lock:
        _secret = key
        _secret_is_random = False


def _get_secret() -> bytes:
    key = _secret
    return key if key is not None else _init_secret()


def _init_secret() -> bytes:
    global _secret, _secret_is_random
    # The lock keeps racing first users from minting two different random secrets.
    with _secret_lock:
        if _secret is None:
            env = os.environ.get("BLAZING_SECRET")
            _secret_is_random = not env
            _secret = env.encode("utf-8") if env else os.urandom(32)
        return _secret


def _secret_hint() -> str:
    if _secret_is_random:
        return (
            " This process signs with a random per-process secret because "
            "BLAZING_SECRET is unset; set the same BLAZING_SECRET in every process."
        )
    return " Every process of a deployment must use the same BLAZING_SECRET."


def _sign(body: bytes) -> bytes:
    return hmac.digest(_get_secret(), body, "sha256") + body


def dumps_signed(obj: Any) -> bytes:
    """Pickle ``obj`` (protocol 5) and prefix the HMAC-SHA256 signature."""
    return _sign(pickle.dumps(obj, protocol=_PICKLE_PROTOCOL))


def loads_signed(data: bytes) -> Any:
    """Verify a payload made by :func:`dumps_signed`, then unpickle it.

    Raises :class:`SignatureError` (nothing is unpickled) when the signature is
    missing or wrong, and :class:`MalformedPayloadError` when a correctly signed
    pickle cannot be loaded here (for example its class is not importable).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedPayloadError(
            f"signed pickle must be bytes, not {type(data).__name__}"
        )
    view = memoryview(data)
    if view.nbytes < _SIG_LEN:
        raise SignatureError(
            f"refused a pickled value: it is unsigned or truncated ({view.nbytes} "
            f"bytes, shorter than the {_SIG_LEN}-byte HMAC); it was not unpickled."
            + _secret_hint()
        )
    body = view[_SIG_LEN:]
    expected = hmac.digest(_get_secret(), body, "sha256")
    if not hmac.compare_digest(view[:_SIG_LEN], expected):
        raise SignatureError(
            "refused a pickled value: its HMAC signature does not match (the payload "
            "was tampered with or signed with another secret); it was not unpickled."
            + _secret_hint()
        )
    try:
        return pickle.loads(body)
    except Exception as exc:
        raise MalformedPayloadError(
            "a correctly signed pickled value could not be unpickled in this process "
            f"({type(exc).__name__}: {exc}); is the same code installed here?"
        ) from exc


# --------------------------------------------------------------------------- encoding

_CONTAINER_KIND = {tuple: b"\x00", set: b"\x01", frozenset: b"\x02"}
_TUPLE_MARK = ExtType(EXT_CONTAINER, b"\x00")
_SET_MARK = ExtType(EXT_CONTAINER, b"\x01")
_FROZENSET_MARK = ExtType(EXT_CONTAINER, b"\x02")
# Bytes of a fixext1 with code EXT_CONTAINER: decode skips list_hook if absent.
_MARK_NEEDLE = bytes([0xD4, EXT_CONTAINER])
_MARK_BYTE = 0xD4  # an int needle is a plain memchr, the cheapest first test

_DATETIME = struct.Struct(">HBBBBBIB")
_DATE = struct.Struct(">HBB")
_TIME = struct.Struct(">BBBIB")
_TIMEDELTA = struct.Struct(">iII")
_TZ_OFFSET = struct.Struct(">Bq")
_TZ_FIXED, _TZ_NAMED, _TZ_ZONEINFO = 1, 2, 3


def _encode_tz(tz: Any) -> bytes | None:
    """Return the tz suffix, or None when the tzinfo needs the pickle fallback."""
    if tz is None:
        return b""
    cls = type(tz)
    if cls is timezone:
        offset = tz.utcoffset(None)
        micros = (offset.days * 86400 + offset.seconds) * 1_000_000 + offset.microseconds
        name = tz.tzname(None)
        if name == timezone(offset).tzname(None):
            return _TZ_OFFSET.pack(_TZ_FIXED, micros)
        return _TZ_OFFSET.pack(_TZ_NAMED, micros) + name.encode("utf-8", "surrogatepass")
    if cls is ZoneInfo and tz.key is not None:
        return bytes([_TZ_ZONEINFO]) + tz.key.encode("utf-8", "surrogatepass")
    return None


def _decode_tz(data: bytes) -> Any:
    if not data:
        return None
    kind = data[0]
    if kind == _TZ_ZONEINFO:
        key = data[1:].decode("utf-8", "surrogatepass")
        try:
            return ZoneInfo(key)
        except Exception as exc:
            raise MalformedPayloadError(
                f"time zone {key!r} is not available in this process "
                f"({type(exc).__name__}: {exc}); install tzdata?"
            ) from exc
    if kind not in (_TZ_FIXED, _TZ_NAMED):
        raise MalformedPayloadError(f"unknown time zone encoding {kind}")
    kind, micros = _TZ_OFFSET.unpack_from(data)
    offset = timedelta(microseconds=micros)
    name = data[_TZ_OFFSET.size:]
    if kind == _TZ_FIXED:
        if name:
            raise MalformedPayloadError("trailing bytes after a fixed UTC offset")
        return timezone(offset)
    return timezone(offset, name.decode("utf-8", "surrogatepass"))


def _encode_datetime(value: datetime) -> ExtType | None:
    tz = _encode_tz(value.tzinfo)
    if tz is None:
        return None
    head = _DATETIME.pack(
        value.year, value.month, value.day, value.hour, value.minute,
        value.second, value.microsecond, value.fold,
    )
    return ExtType(EXT_DATETIME, head + tz)


def _encode_time(value: time) -> ExtType | None:
    tz = _encode_tz(value.tzinfo)
    if tz is None:
        return None
    head = _TIME.pack(value.hour, value.minute, value.second, value.microsecond, value.fold)
    return ExtType(EXT_TIME, head + tz)


def _encode_bigint(value: int) -> ExtType:
    # Only ints outside msgpack's 64-bit range reach the default hook.
    return ExtType(EXT_BIGINT, value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True))


_ENCODERS: dict[type, Any] = {
    # Tuples and sets become a plain array led by a marker: no nested packing,
    # so one Packer call covers the whole value and msgpack's own depth limit holds.
    tuple: lambda v: [_TUPLE_MARK, *v],
    set: lambda v: [_SET_MARK, *v],
    frozenset: lambda v: [_FROZENSET_MARK, *v],
    datetime: _encode_datetime,
    date: lambda v: ExtType(EXT_DATE, _DATE.pack(v.year, v.month, v.day)),
    time: _encode_time,
    timedelta: lambda v: ExtType(
        EXT_TIMEDELTA, _TIMEDELTA.pack(v.days, v.seconds, v.microseconds)
    ),
    Decimal: lambda v: ExtType(EXT_DECIMAL, str(v).encode("ascii")),
    uuid.UUID: lambda v: ExtType(EXT_UUID, v.bytes),
    int: _encode_bigint,
}


def _default(obj: Any) -> Any:
    """msgpack default hook: everything msgpack does not pack natively lands here."""
    encoder = _ENCODERS.get(type(obj))
    if encoder is not None:
        result = encoder(obj)
        if result is not None:
            return result
    try:
        body = pickle.dumps(obj, protocol=_PICKLE_PROTOCOL)
    except Exception as exc:
        err = SerializationError(_unencodable(obj, "", exc))
        err._offender = obj  # lets encode() say where it sits in the structure
        raise err from exc
    return ExtType(EXT_PICKLE, _sign(body))


def _type_name(obj: Any) -> str:
    cls = type(obj)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _new_packer(unicode_errors: str | None = None) -> Packer:
    return Packer(
        default=_default,
        use_bin_type=True,
        strict_types=True,  # so tuples and subclasses reach _default
        unicode_errors=unicode_errors,
        buf_size=64 * 1024,
    )


# Packers are reused because creating one costs a 256 KiB-ish allocation, far
# more than packing a small value. Each encode() owns the packer it popped, so
# threads and re-entrant calls (a __reduce__ that encodes) never share one.
_PACKERS: list[Packer] = []
_POOL_MAX = 16
_POOL_KEEP_BYTES = 256 * 1024  # a packer's buffer never shrinks; drop big ones

_max_value_bytes: int | None = None


def _default_max_bytes() -> int:
    global _max_value_bytes
    if _max_value_bytes is None:
        raw = os.environ.get("BLAZING_MAX_VALUE_BYTES")
        if not raw:
            _max_value_bytes = DEFAULT_MAX_VALUE_BYTES
        else:
            try:
                limit = int(raw)
            except ValueError:
                limit = 0
            if limit < 1:
                raise ValueError(
                    f"BLAZING_MAX_VALUE_BYTES must be a positive integer, got {raw!r}"
                )
            _max_value_bytes = limit
    return _max_value_bytes


def encode(value: Any, max_bytes: int | None = None) -> bytes:
    """Encode ``value`` to bytes that :func:`decode` turns back into an equal value.

    ``max_bytes`` caps the encoded size (default ``BLAZING_MAX_VALUE_BYTES`` or
    :data:`DEFAULT_MAX_VALUE_BYTES`). Raises :class:`SerializationError` when the
    value cannot be encoded and :class:`ValueTooLargeError` when it is too big.
    """
    try:
        packer = _PACKERS.pop()
    except IndexError:
        packer = _new_packer()
    try:
        data = packer.pack(value)
    except UnicodeEncodeError:
        # Lone surrogates (e.g. os.fsdecode'd file names): slower exact path.
        data = _pack_slow(value)
    except SerializationError as exc:
        raise _with_location(exc, value) from exc.__cause__
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise _serialization_error(value, exc) from exc
    else:
        if len(data) <= _POOL_KEEP_BYTES and len(_PACKERS) < _POOL_MAX:
            _PACKERS.append(packer)
    limit = max_bytes if max_bytes is not None else (_max_value_bytes or _default_max_bytes())
    if len(data) > limit:
        raise ValueTooLargeError(len(data), limit)
    return data


def _pack_slow(value: Any) -> bytes:
    try:
        return _new_packer("surrogatepass").pack(value)
    except SerializationError as exc:
        raise _with_location(exc, value) from exc.__cause__
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise _serialization_error(value, exc) from exc


def _serialization_error(value: Any, exc: BaseException) -> SerializationError:
    if isinstance(exc, RecursionError) or "recursion limit" in str(exc):
        return SerializationError(
            f"cannot encode a value of type {_type_name(value)!r}: it is nested too "
            "deeply or contains a reference cycle"
        )
    return SerializationError(
        f"cannot encode a value of type {_type_name(value)!r}: {type(exc).__name__}: {exc}"
    )


def _unencodable(obj: Any, where: str, exc: BaseException) -> str:
    return (
        f"cannot encode a value of type {_type_name(obj)!r}{where}: it is not a "
        f"supported type and pickling it failed ({type(exc).__name__}: {exc})"
    )


def _with_location(err: SerializationError, root: Any) -> SerializationError:
    offender = getattr(err, "_offender", None)
    cause = err.__cause__
    if offender is None or offender is root or cause is None:
        return SerializationError(str(err))
    where = _locate(root, offender)
    if not where:
        return SerializationError(str(err))
    return SerializationError(_unencodable(offender, f" at value{where}", cause))


_path_repr = reprlib.Repr()
_path_repr.maxstring = 40
_path_repr.maxother = 40


def _locate(root: Any, target: Any, budget: int = 10_000) -> str | None:
    """Find ``target`` inside ``root`` by identity; only runs on the error path."""
    stack: list[tuple[Any, str]] = [(root, "")]
    while stack and budget > 0:
        budget -= 1
        node, path = stack.pop()
        if node is target:
            return path
        cls = type(node)
        children: list[tuple[Any, str]] = []
        if cls is list or cls is tuple:
            children = [(item, f"{path}[{i}]") for i, item in enumerate(node)]
        elif cls is dict:
            for key, item in node.items():
                label = _path_repr.repr(key)
                children.append((key, f"{path} (dict key {label})"))
                children.append((item, f"{path}[{label}]"))
        elif cls is set or cls is frozenset:
            children = [(item, f"{path} (a {cls.__name__} element)") for item in node]
        stack.extend(reversed(children))  # reversed: report the first offender
    return None


# --------------------------------------------------------------------------- decoding


class _Marker:
    """Decoded form of a container marker; only ever the head of an array."""

    __slots__ = ("kind",)

    def __init__(self, kind: type) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<blazing.codec {self.kind.__name__} marker>"


_MARKERS = {kind_byte: _Marker(kind) for kind, kind_byte in _CONTAINER_KIND.items()}
_TUPLE, _SET, _FROZENSET = (_MARKERS[_CONTAINER_KIND[k]] for k in (tuple, set, frozenset))


def _list_hook(items: list) -> Any:
    # Runs before a finished array is used, so tuple and frozenset dict keys stay hashable.
    if items:
        head = items[0]
        if head is _TUPLE:
            return tuple(items[1:])
        if head is _SET:
            return set(items[1:])
        if head is _FROZENSET:
            return frozenset(items[1:])
    return items


def _decode_container(data: bytes) -> _Marker:
    marker = _MARKERS.get(data)
    if marker is None:
        raise MalformedPayloadError(f"unknown container marker {data!r}")
    return marker


def _decode_datetime(data: bytes) -> datetime:
    year, month, day, hour, minute, second, micro, fold = _DATETIME.unpack_from(data)
    tz = _decode_tz(data[_DATETIME.size:])
    return datetime(year, month, day, hour, minute, second, micro, tz, fold=fold)


def _decode_time(data: bytes) -> time:
    hour, minute, second, micro, fold = _TIME.unpack_from(data)
    return time(hour, minute, second, micro, _decode_tz(data[_TIME.size:]), fold=fold)


def _decode_decimal(data: bytes) -> Decimal:
    text = data.decode("ascii")
    if not text or text != text.strip():
        raise MalformedPayloadError(f"bad Decimal payload {data[:40]!r}")
    return Decimal(text)


def _decode_pickle(data: bytes) -> Any:
    return loads_signed(data)


_DECODERS: dict[int, Any] = {
    EXT_CONTAINER: _decode_container,
    EXT_DATETIME: _decode_datetime,
    EXT_DATE: lambda d: date(*_DATE.unpack(d)),
    EXT_TIME: _decode_time,
    EXT_TIMEDELTA: lambda d: timedelta(*_TIMEDELTA.unpack(d)),
    EXT_DECIMAL: _decode_decimal,
    EXT_UUID: lambda d: uuid.UUID(bytes=d),
    EXT_BIGINT: lambda d: int.from_bytes(d, "big", signed=True),
    EXT_PICKLE: _decode_pickle,
}


def _ext_hook(code: int, data: bytes) -> Any:
    decoder = _DECODERS.get(code)
    if decoder is None:
        raise MalformedPayloadError(f"unknown ext type code {code}")
    return decoder(data)


def decode(data: bytes) -> Any:
    """Decode bytes made by :func:`encode`.

    Bad input only ever raises :class:`CodecError` subclasses:
    :class:`SignatureError` for an unsigned or tampered pickle (never unpickled)
    and :class:`MalformedPayloadError` for anything else that is not a payload.
    """
    if type(data) is not bytes:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise MalformedPayloadError(
                f"cannot decode a {type(data).__name__}: expected bytes"
            )
        data = bytes(data)
    try:
        if _MARK_BYTE in data and data.find(_MARK_NEEDLE) != -1:
            return unpackb(
                data, raw=False, strict_map_key=False, unicode_errors="surrogatepass",
                ext_hook=_ext_hook, list_hook=_list_hook,
            )
        return unpackb(
            data, raw=False, strict_map_key=False, unicode_errors="surrogatepass",
            ext_hook=_ext_hook,
        )
    except CodecError:
        raise
    except Exception as exc:
        # msgpack, struct, datetime, int and friends each raise their own types.
        raise MalformedPayloadError(
            f"not a valid encoded value ({len(data)} bytes): {type(exc).__name__}: {exc}"
        ) from exc


# --------------------------------------------------------------------------- exceptions


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the error
        return f"<unprintable {type(exc).__name__} object>"


def encode_exception(exc: BaseException) -> dict[str, Any]:
    """Describe ``exc`` as a plain dict that :func:`encode` can carry.

    Keys: ``type`` ("module.QualName"), ``message``, ``traceback`` (formatted
    text) and ``payload``: the signed pickle of the exception, or None when the
    exception does not survive a pickle round trip.
    """
    cls = type(exc)
    if isinstance(exc, RemoteError):
        # Keep reporting the original type through any number of hops.
        type_name, message = exc.type_name, exc.message
        fallback = exc.remote_traceback
    else:
        type_name = f"{cls.__module__}.{cls.__qualname__}"
        message = _safe_str(exc)
        fallback = f"{type_name}: {message}\n"
    if isinstance(exc, RemoteError) and exc.__traceback__ is None:
        text = exc.remote_traceback  # never raised here: nothing to add to its story
    else:
        try:
            # With its causes: a decoded exception re-raised here (a step's, through a
            # workflow) keeps the remote frames as its RemoteTraceback cause.
            text = "".join(traceback.format_exception(exc))
        except Exception:  # noqa: BLE001 - same: describe the error whatever happens
            text = fallback
    payload = None
    try:
        body = pickle.dumps(exc, protocol=_PICKLE_PROTOCOL)
        # Custom __init__ signatures often pickle fine but fail to unpickle.
        if type(pickle.loads(body)) is cls:
            payload = _sign(body)
    except Exception:  # noqa: BLE001 - no payload; the type name and message still travel
        payload = None
    return {"type": type_name, "message": message, "traceback": text, "payload": payload}


def _resolve_exception_type(type_name: str) -> type | None:
    # Only modules already imported are searched: importing a module named by
    # unsigned data could run arbitrary module-level code.
    parts = type_name.split(".")
    if len(parts) == 1:
        parts = ["builtins", *parts]
    for split in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:split]))
        if module is None:
            continue
        obj: Any = module
        for attr in parts[split:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if isinstance(obj, type) and issubclass(obj, BaseException):
            return obj
    return None


def decode_exception(info: Mapping[str, Any]) -> BaseException:
    """Rebuild an exception from :func:`encode_exception` output.

    Tries the signed pickle, then the original type (from an already imported
    module) constructed with the message, then :class:`RemoteError`. The remote
    traceback text is attached as ``__blazing_traceback__`` and, as a
    :class:`RemoteTraceback`, as the exception's ``__cause__``.
    """
    if not isinstance(info, Mapping):
        info = {"type": "builtins.Exception", "message": _path_repr.repr(info)}
    type_name = str(info.get("type") or "builtins.Exception")
    message = str(info.get("message") or "")
    text = str(info.get("traceback") or "")
    payload = info.get("payload")

    exc: BaseException | None = None
    if payload is not None:
        try:
            loaded = loads_signed(payload)
        except CodecError:
            loaded = None
        if isinstance(loaded, BaseException):
            exc = loaded
    if exc is None:
        cls = _resolve_exception_type(type_name)
        if cls is not None:
            try:
                built = cls(message)
            except Exception:  # noqa: BLE001 - any __init__ signature; fall back to RemoteError
                built = None
            if isinstance(built, BaseException):
                exc = built
    if exc is None:
        exc = RemoteError(type_name, message, text)
    with contextlib.suppress(Exception):  # best effort: some types refuse attributes
        exc.__blazing_traceback__ = text  # type: ignore[attr-defined]
    if text and exc.__cause__ is None:
        # Printed above the local frames: where it was raised, the remote `raise` line.
        exc.__cause__ = RemoteTraceback(text)
    return exc
