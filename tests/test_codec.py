"""Tests for blazing.codec: exact round trips, signed pickles, bad input, exceptions."""

import collections
import dataclasses
import enum
import hashlib
import hmac
import math
import pickle
import random
import socket
import sys
import threading
import uuid
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo

import msgpack
import pytest

from blazing import codec

SECRET = b"test-secret-for-blazing-codec"


@pytest.fixture(autouse=True)
def known_secret(monkeypatch):
    """Every test signs with SECRET; the module's previous state comes back after."""
    monkeypatch.setattr(codec, "_secret", None)
    monkeypatch.setattr(codec, "_secret_is_random", False)
    codec.set_secret(SECRET)


# --------------------------------------------------------------------------- helpers


def assert_identical(got, want, path="value"):
    """Equality that also checks types at every level, dict order, -0.0 and NaN."""
    assert type(got) is type(want), f"{path}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, float):
        if math.isnan(want):
            assert math.isnan(got), path
        else:
            assert got == want and math.copysign(1, got) == math.copysign(1, want), path
    elif isinstance(want, Decimal):
        assert got.as_tuple() == want.as_tuple(), path  # exact, NaN and -0 included
    elif isinstance(want, dict):
        assert len(got) == len(want), path
        for (gk, gv), (wk, wv) in zip(got.items(), want.items(), strict=True):
            assert_identical(gk, wk, f"{path} key {wk!r}")
            assert_identical(gv, wv, f"{path}[{wk!r}]")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_identical(g, w, f"{path}[{i}]")
    elif isinstance(want, (set, frozenset)):
        assert got == want, path
        by_value = {w: w for w in want}
        for g in got:
            assert_identical(g, by_value[g], f"{path} element {g!r}")
    elif isinstance(want, (datetime, time)):
        assert got == want, path
        assert (got.tzinfo is None) == (want.tzinfo is None), path
        assert got.tzinfo == want.tzinfo, path
        assert got.fold == want.fold, path
        assert got.tzname() == want.tzname(), path
        if isinstance(want, datetime):
            assert got.utcoffset() == want.utcoffset(), path
        assert got.isoformat() == want.isoformat(), path
    else:
        assert got == want, path


def roundtrip(value):
    return codec.decode(codec.encode(value))


def top_ext_code(data: bytes) -> int:
    return msgpack.unpackb(data, ext_hook=msgpack.ExtType).code


# Module level so pickle can find them by reference.
@dataclasses.dataclass
class Point:
    x: int
    y: float
    tags: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class FrozenPoint:
    x: int
    y: int


class Color(enum.IntEnum):
    RED = 1


class Mode(enum.Enum):
    FAST = "fast"


Pair = collections.namedtuple("Pair", "left right")


class MyDict(dict):
    pass


class MinusFive(tzinfo):
    """A tzinfo class the codec does not know: must travel via the pickle fallback."""

    def utcoffset(self, dt):
        return timedelta(hours=-5)

    def dst(self, dt):
        return timedelta(0)

    def tzname(self, dt):
        return "MINUS5"

    def __eq__(self, other):
        return type(other) is MinusFive

    def __hash__(self):
        return 5


class CustomError(Exception):
    """A module-level exception with extra state."""

    def __init__(self, message, code=0):
        super().__init__(message, code)
        self.code = code


class NeedsTwoArgs(Exception):
    """Pickles but cannot unpickle: args holds one string, __init__ needs two."""

    def __init__(self, a, b):
        super().__init__(f"{a}-{b}")


class CarriesLock(Exception):
    """Cannot be pickled (holds a lock) but can be rebuilt from its message."""

    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()


def _trip(path):
    with open(path, "w") as fh:
        fh.write("executed")
    return "tripped"


class Canary:
    """Unpickling this writes a file: proof of code execution if it ever happens."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (_trip, (str(self.path),))


class EncodesItself:
    """Re-enters codec.encode while the codec is pickling it."""

    def __init__(self, inner):
        self.inner = inner

    def __reduce__(self):
        return (EncodesItself._rebuild, (codec.encode(self.inner),))

    @staticmethod
    def _rebuild(blob):
        return EncodesItself(codec.decode(blob))

    def __eq__(self, other):
        return type(other) is EncodesItself and other.inner == self.inner


# --------------------------------------------------------------------------- round trips

PARIS = ZoneInfo("Europe/Paris")
UTC = timezone.utc  # noqa: UP017 - the project also supports 3.10

ROUNDTRIP_VALUES = {
    "none": None,
    "true": True,
    "false": False,
    "zero": 0,
    "int": 42,
    "negative_int": -7,
    "int64_max": 2**63 - 1,
    "int64_min": -(2**63),
    "uint64_max": 2**64 - 1,
    "just_over_uint64": 2**64,
    "just_under_int64": -(2**63) - 1,
    "big_int": 2**200,
    "big_negative_int": -(2**200),
    "huge_int": 7**5000,
    "float_42": 42.0,
    "float": 1.5,
    "negative_zero": -0.0,
    "inf": float("inf"),
    "minus_inf": float("-inf"),
    "nan": float("nan"),
    "empty_str": "",
    "unicode": "héllo ✓ 漢字 🚀",
    "lone_surrogate": "file\udcff.txt",
    "empty_bytes": b"",
    "bytes": bytes(range(256)),
    "empty_list": [],
    "list": [1, "a", None, 2.5],
    "empty_tuple": (),
    "one_tuple": (1,),
    "nested_tuples": (1, (2, (3, ()))),
    "tuple_of_lists": ([1], [2, (3,)]),
    "empty_dict": {},
    "dict_order": {"b": 1, "a": 2, "c": 3},
    "non_str_keys": {
        2: "int",
        True: "bool",
        None: "none",
        b"k": "bytes",
        (1, "x"): "tuple",
        (1, (2, 3)): "nested tuple",
        1.5: "float",
        frozenset({1, 2}): "frozenset",
        "s": "str",
    },
    "bool_vs_int_list": [True, 1, False, 0, [True, 1]],
    "bool_key": {True: "bool"},
    "int_key": {1: "int"},
    "empty_set": set(),
    "set": {1, 2, 3},
    "set_of_hashables": {(1, 2), frozenset({3, 4}), "x", b"y", None, (1, (2,))},
    "empty_frozenset": frozenset(),
    "frozenset": frozenset({"a", (1, 2)}),
    "naive_datetime": datetime(2024, 2, 29, 23, 59, 58, 999999),
    "utc_datetime": datetime(2024, 1, 1, 12, 0, 0, 1, tzinfo=UTC),
    "offset_datetime": datetime(2024, 1, 1, 12, 0, 0, 123456, timezone(timedelta(hours=5.5))),
    "negative_offset": datetime(1999, 12, 31, tzinfo=timezone(-timedelta(hours=3, microseconds=7))),
    "named_offset": datetime(2024, 6, 1, tzinfo=timezone(timedelta(hours=1), "CET")),
    "zoneinfo_datetime": datetime(2024, 7, 14, 10, 30, 5, 42, tzinfo=PARIS),
    "zoneinfo_fold": datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=1),
    "datetime_min": datetime.min,
    "datetime_max": datetime.max,
    "date": date(2024, 2, 29),
    "date_min": date.min,
    "naive_time": time(23, 59, 59, 999999),
    "aware_time": time(1, 2, 3, 4, tzinfo=timezone(timedelta(hours=-8))),
    "zoneinfo_time": time(12, 0, tzinfo=PARIS),
    "timedelta": timedelta(days=3, seconds=4, microseconds=5),
    "negative_timedelta": timedelta(microseconds=-1),
    "timedelta_max": timedelta.max,
    "timedelta_min": timedelta.min,
    "decimal": Decimal("1.10"),
    "decimal_negative_zero": Decimal("-0"),
    "decimal_nan": Decimal("NaN"),
    "decimal_snan": Decimal("-sNaN123"),
    "decimal_inf": Decimal("Infinity"),
    "decimal_minus_inf": Decimal("-Infinity"),
    "decimal_exponent": Decimal("1.000E+999999"),
    "decimal_long": Decimal("3.14159265358979323846264338327950288419716939937510"),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "deep_mix": {
        "k": [(1, {"x": {frozenset({(1, 2)}), (3, Decimal("2.5"))}}), datetime(2020, 1, 1)],
        (date(2020, 1, 2), uuid.UUID(int=1)): [timedelta(1), None, (True,)],
    },
    "deep_list": [[[[[[[[[[1]]]]]]]]]],
    "long_list": list(range(10_000)),
}


@pytest.mark.parametrize("value", ROUNDTRIP_VALUES.values(), ids=ROUNDTRIP_VALUES.keys())
def test_roundtrip_exact(value):
    assert_identical(roundtrip(value), value)


def test_42_float_stays_float_and_1_stays_int():
    got = roundtrip([42.0, 1, True])
    assert [type(v) for v in got] == [float, int, bool]


def test_bool_and_int_dict_keys_keep_their_type():
    assert type(next(iter(roundtrip({True: 1})))) is bool
    assert type(next(iter(roundtrip({1: True})))) is int
    assert type(roundtrip({1: True})[1]) is bool


def test_tuple_keys_come_back_hashable():
    got = roundtrip({(1, (2, "x")): "v", frozenset({(1,)}): "w"})
    assert got[(1, (2, "x"))] == "v"
    assert got[frozenset({(1,)})] == "w"


def test_bytearray_and_memoryview_come_back_as_bytes():
    assert_identical(roundtrip(bytearray(b"abc")), b"abc")
    assert_identical(roundtrip(memoryview(b"abc")), b"abc")


@pytest.mark.parametrize(
    "value",
    [
        Point(1, 2.5, ["a"]),
        FrozenPoint(1, 2),
        Color.RED,
        Mode.FAST,
        Pair(1, (2, 3)),
        MyDict(a=1),
        collections.OrderedDict([("b", 1), ("a", 2)]),
        collections.defaultdict(list, {"a": [1]}),
        collections.Counter("hello"),
        ValueError("as a value"),
        datetime(2024, 1, 1, 9, tzinfo=MinusFive()),
        range(3),
        complex(1, -2),
    ],
    ids=lambda v: type(v).__name__,
)
def test_other_types_use_signed_pickle_fallback(value):
    data = codec.encode(value)
    assert top_ext_code(data) == codec.EXT_PICKLE
    got = codec.decode(data)
    assert type(got) is type(value)
    if isinstance(value, BaseException):
        assert got.args == value.args
    else:
        assert got == value
    if isinstance(value, datetime):
        assert got.tzname() == "MINUS5"


def test_subclass_of_builtin_inside_structure_keeps_type():
    value = {"color": Color.RED, "items": [Pair(1, 2), 1], "set": {FrozenPoint(1, 2)}}
    got = roundtrip(value)
    assert type(got["color"]) is Color
    assert type(got["items"][0]) is Pair and type(got["items"][1]) is int
    assert got == value


def test_wire_format_is_pinned():
    # Other implementations (the Go core, tooling) depend on these exact bytes.
    assert codec.encode((1, 2)) == b"\x93\xd4\x01\x00\x01\x02"
    assert codec.encode({1}) == b"\x92\xd4\x01\x01\x01"
    assert codec.encode(frozenset()) == b"\x91\xd4\x01\x02"
    assert codec.encode(date(2020, 1, 2)) == b"\xd6\x03\x07\xe4\x01\x02"
    assert codec.encode(uuid.UUID(int=1)) == b"\xd8\x07" + uuid.UUID(int=1).bytes
    assert codec.encode(2**64) == b"\xc7\x09\x08\x01" + bytes(8)
    assert codec.encode(Decimal("-0")) == b"\xd5\x06-0"
    assert codec.encode(timedelta(days=-1, microseconds=2)) == (
        b"\xc7\x0c\x05" + b"\xff\xff\xff\xff" + bytes(4) + b"\x00\x00\x00\x02"
    )


def test_reentrant_encode_from_reduce():
    value = [EncodesItself((1, {"a": EncodesItself([2])})), (3,)]
    assert roundtrip(value) == value


def test_threads_do_not_share_packers():
    errors = []

    def work(n):
        try:
            for i in range(300):
                value = {"n": n, "i": i, "t": (n, i, [n] * (i % 7)), "p": Point(n, i)}
                assert roundtrip(value) == value
        except (AssertionError, codec.CodecError) as exc:  # a thread's failure is lost otherwise
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# --------------------------------------------------------------------------- signatures


def _signed_parts(value):
    body = pickle.dumps(value, protocol=5)
    sig = hmac.digest(SECRET, body, hashlib.sha256)
    data = codec.encode(value)
    start = data.index(sig + body)
    return data, start, len(body)


@pytest.mark.parametrize(
    "where", ["signature_first", "signature_last", "pickle_first", "pickle_last"]
)
def test_tampered_payload_is_refused(where):
    data, start, body_len = _signed_parts(Point(1, 2.0))
    offset = {
        "signature_first": start,
        "signature_last": start + 31,
        "pickle_first": start + 32,
        "pickle_last": start + 32 + body_len - 1,
    }[where]
    tampered = bytearray(data)
    tampered[offset] ^= 0x01
    with pytest.raises(codec.SignatureError, match="refused.*not unpickled.*BLAZING_SECRET"):
        codec.decode(bytes(tampered))


def test_unsigned_pickle_is_refused_and_never_executed(tmp_path):
    flag = tmp_path / "canary"
    raw = pickle.dumps(Canary(flag), protocol=5)
    forged = [
        msgpack.packb(msgpack.ExtType(codec.EXT_PICKLE, raw)),  # unsigned
        msgpack.packb(msgpack.ExtType(codec.EXT_PICKLE, bytes(32) + raw)),  # fake signature
        msgpack.packb(msgpack.ExtType(codec.EXT_PICKLE, raw[:20])),  # shorter than a signature
        msgpack.packb([1, {"x": msgpack.ExtType(codec.EXT_PICKLE, raw)}]),  # nested
    ]
    for data in forged:
        with pytest.raises(codec.SignatureError, match="refused.*not unpickled"):
            codec.decode(data)
    with pytest.raises(codec.SignatureError):
        codec.loads_signed(raw)
    info = {"type": "builtins.ValueError", "message": "m", "traceback": "", "payload": raw}
    assert type(codec.decode_exception(info)) is ValueError
    assert not flag.exists()
    # The canary is live: unpickling it for real does write the file.
    assert pickle.loads(raw) == "tripped" and flag.exists()


def test_different_secret_refuses():
    codec.set_secret(b"first")
    data = codec.encode(Point(1, 2.0))
    codec.set_secret(b"second")
    with pytest.raises(codec.SignatureError, match="BLAZING_SECRET"):
        codec.decode(data)
    codec.set_secret("first")  # str secrets are their utf-8 bytes
    assert codec.decode(data) == Point(1, 2.0)


def test_secret_defaults_to_env(monkeypatch):
    monkeypatch.setenv("BLAZING_SECRET", "from-env")
    codec.set_secret(None)
    data = codec.encode(Point(1, 2.0))
    codec.set_secret(b"from-env")
    assert codec.decode(data) == Point(1, 2.0)


def test_random_secret_without_env(monkeypatch):
    monkeypatch.delenv("BLAZING_SECRET", raising=False)
    codec.set_secret(None)
    data = codec.encode(Point(1, 2.0))
    assert codec.decode(data) == Point(1, 2.0)
    codec.set_secret(None)  # a new process would have a new random secret
    with pytest.raises(codec.SignatureError, match="random per-process secret"):
        codec.decode(data)


def test_bad_secrets_rejected():
    with pytest.raises(ValueError, match="empty"):
        codec.set_secret(b"")
    with pytest.raises(TypeError, match="bytes or str"):
        codec.set_secret(123)


def test_dumps_loads_signed():
    blob = codec.dumps_signed({"a": Point(1, 2.0)})
    assert codec.loads_signed(blob) == {"a": Point(1, 2.0)}


def test_signed_but_unloadable_pickle_is_malformed():
    # A global lookup of no_such_mod_.X, signed with the right secret.
    body = b"\x80\x05\x8c\x0cno_such_mod_\x94\x8c\x01X\x94\x93\x94."
    signed = hmac.digest(SECRET, body, "sha256") + body
    data = msgpack.packb(msgpack.ExtType(codec.EXT_PICKLE, signed))
    with pytest.raises(codec.MalformedPayloadError, match="could not be unpickled"):
        codec.decode(data)


# --------------------------------------------------------------------------- bad input

BAD_INPUT_ERRORS = (codec.MalformedPayloadError, codec.SignatureError)


def _decode_or_codec_error(data):
    try:
        codec.decode(data)
    except BAD_INPUT_ERRORS:
        pass  # anything else (or a crash) fails the test


def test_random_bytes_only_raise_codec_errors():
    rng = random.Random(1234)
    for _ in range(4000):
        _decode_or_codec_error(rng.randbytes(rng.randint(0, 64)))


def test_random_ext_payloads_only_raise_codec_errors():
    rng = random.Random(1234)
    for _ in range(3000):
        code = rng.randint(0, 12)
        payload = rng.randbytes(rng.randint(0, 40))
        _decode_or_codec_error(msgpack.packb([msgpack.ExtType(code, payload)]))
        _decode_or_codec_error(msgpack.packb({"k": [msgpack.ExtType(code, payload), 1]}))


RICH_VALUE = {
    "tuple": (1, "two", (3.0, None)),
    "set": {1, 2},
    "frozen": frozenset({"a"}),
    "dt": datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=PARIS),
    "fixed": datetime(2024, 1, 2, tzinfo=timezone(timedelta(hours=2), "X")),
    "t": time(1, 2, tzinfo=UTC),
    "d": date(2024, 1, 2),
    "td": timedelta(seconds=-5),
    "dec": Decimal("-1.50"),
    "uuid": uuid.UUID(int=7),
    "big": -(2**100),
    "obj": Point(1, 2.0),
    (1, 2): [True, 1, b"x", "y"],
}


def test_every_truncation_is_refused():
    data = codec.encode(RICH_VALUE)
    assert_identical(codec.decode(data), RICH_VALUE)
    for end in range(len(data)):
        with pytest.raises(BAD_INPUT_ERRORS):
            codec.decode(data[:end])


def test_mutated_payloads_only_raise_codec_errors():
    data = codec.encode(RICH_VALUE)
    rng = random.Random(1234)
    for _ in range(3000):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        _decode_or_codec_error(bytes(mutated))


@pytest.mark.parametrize("data", ["text", None, 123, 1.5, [b"x"], object()], ids=repr)
def test_non_bytes_input_is_malformed(data):
    with pytest.raises(codec.MalformedPayloadError, match="expected bytes"):
        codec.decode(data)


def test_bytes_like_input_is_accepted():
    data = codec.encode((1, 2))
    assert codec.decode(bytearray(data)) == (1, 2)
    assert codec.decode(memoryview(data)) == (1, 2)


def _datetime_ext(tz_suffix):
    head = bytes.fromhex("07e401010000000000000000")  # 2020-01-01 00:00, fold 0
    return msgpack.packb(msgpack.ExtType(codec.EXT_DATETIME, head + tz_suffix))


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (b"", "not a valid encoded value"),
        (b"\xc1", "not a valid encoded value"),  # never-used msgpack byte
        (b"\x01\x02", "not a valid encoded value"),  # trailing data
        (msgpack.packb(msgpack.ExtType(42, b"x")), "unknown ext type code 42"),
        (msgpack.packb(msgpack.ExtType(codec.EXT_CONTAINER, b"\x07")), "unknown container marker"),
        (msgpack.packb(msgpack.ExtType(codec.EXT_DATE, b"\x00")), "not a valid encoded value"),
        (msgpack.packb(msgpack.ExtType(codec.EXT_DATE, b"\x07\xe4\x0d\x01")), "not a valid"),
        (msgpack.packb(msgpack.ExtType(codec.EXT_UUID, b"short")), "not a valid encoded value"),
        (msgpack.packb(msgpack.ExtType(codec.EXT_DECIMAL, b"1.2.3")), "not a valid encoded value"),
        (msgpack.packb(msgpack.ExtType(codec.EXT_DECIMAL, b"\xff")), "not a valid encoded value"),
        (msgpack.packb(msgpack.ExtType(codec.EXT_TIMEDELTA, bytes(12) + b"x")), "not a valid"),
        (_datetime_ext(b"\x09"), "unknown time zone encoding 9"),
        (_datetime_ext(b"\x01" + bytes(8) + b"x"), "trailing bytes after a fixed UTC offset"),
        (_datetime_ext(b"\x03No/Where"), "time zone 'No/Where' is not available"),
        (_datetime_ext(b"\x03../../etc/passwd"), "time zone"),
        (b"\x81\x91\x01\x02", "not a valid encoded value"),  # a list as a dict key
        (b"\x91" * 3000 + b"\x00", "not a valid encoded value"),  # nested too deeply
        (b"\xdd\xff\xff\xff\xff", "not a valid encoded value"),  # huge array header
    ],
    ids=lambda v: v if isinstance(v, str) else "payload",
)
def test_malformed_payloads(data, pattern):
    with pytest.raises(codec.MalformedPayloadError, match=pattern):
        codec.decode(data)


def test_codec_errors_are_value_errors():
    for cls in (
        codec.SerializationError,
        codec.SignatureError,
        codec.MalformedPayloadError,
        codec.ValueTooLargeError,
    ):
        assert issubclass(cls, codec.CodecError) and issubclass(cls, ValueError)


# --------------------------------------------------------------------------- encode errors


def _generator():
    yield 1


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        (lambda: 1, "type 'function'"),
        (_generator(), "type 'generator'"),
        (threading.Lock(), "type '_thread.lock'"),
        ({"a": [1, {"fn": lambda: 1}]}, r"type 'function' at value\['a'\]\[1\]\['fn'\]:"),
        ((1, (2, _generator())), r"type 'generator' at value\[1\]\[1\]:"),
    ],
    ids=["lambda", "generator", "lock", "nested_lambda", "nested_generator"],
)
def test_unserializable_values(value, pattern):
    with pytest.raises(codec.SerializationError, match=pattern):
        codec.encode(value)


def test_socket_is_unserializable():
    with (
        socket.socket() as sock,
        pytest.raises(codec.SerializationError, match="type 'socket.socket'"),
    ):
        codec.encode({"conn": sock})


def test_cycle_and_excessive_depth_are_serialization_errors():
    cycle = []
    cycle.append(cycle)
    with pytest.raises(codec.SerializationError, match="nested too deeply or contains a ref"):
        codec.encode(cycle)
    deep = 1
    for _ in range(2000):
        deep = (deep,)
    with pytest.raises(codec.SerializationError, match="nested too deeply"):
        codec.encode(deep)


def test_encoder_survives_errors():
    with pytest.raises(codec.SerializationError):
        codec.encode([1, 2, lambda: 1])
    assert codec.decode(codec.encode([1, 2, 3])) == [1, 2, 3]


def test_value_too_large():
    too_big = "102 bytes, over the limit of 50 bytes"
    with pytest.raises(codec.ValueTooLargeError, match=too_big) as info:
        codec.encode(b"x" * 100, max_bytes=50)
    assert (info.value.size, info.value.limit) == (102, 50)
    assert codec.encode(b"x" * 100, max_bytes=102) == b"\xc4\x64" + b"x" * 100


def test_max_value_bytes_env(monkeypatch):
    monkeypatch.setattr(codec, "_max_value_bytes", None)
    monkeypatch.setenv("BLAZING_MAX_VALUE_BYTES", "20")
    with pytest.raises(codec.ValueTooLargeError, match="over the limit of 20 bytes"):
        codec.encode("y" * 30)
    assert codec.encode("y" * 30, max_bytes=100)


def test_max_value_bytes_env_must_be_valid(monkeypatch):
    monkeypatch.setattr(codec, "_max_value_bytes", None)
    monkeypatch.setenv("BLAZING_MAX_VALUE_BYTES", "lots")
    with pytest.raises(ValueError, match="BLAZING_MAX_VALUE_BYTES must be a positive integer"):
        codec.encode(1)


def test_default_limit():
    assert codec.DEFAULT_MAX_VALUE_BYTES == 64 * 1024 * 1024


# --------------------------------------------------------------------------- exceptions


def _raised(exc):
    with pytest.raises(type(exc)) as info:
        raise exc
    return info.value


def exception_roundtrip(exc):
    return codec.decode_exception(codec.decode(codec.encode(codec.encode_exception(exc))))


def test_encode_exception_shape():
    info = codec.encode_exception(_raised(ValueError("bad thing")))
    assert info["type"] == "builtins.ValueError"
    assert info["message"] == "bad thing"
    assert "Traceback (most recent call last)" in info["traceback"]
    assert "ValueError: bad thing" in info["traceback"]
    assert isinstance(info["payload"], bytes)


def test_builtin_exception_roundtrip():
    got = exception_roundtrip(_raised(ValueError("x")))
    assert type(got) is ValueError and str(got) == "x"
    assert "in _raised" in got.__blazing_traceback__


def test_custom_exception_roundtrip_keeps_type_and_state():
    got = exception_roundtrip(_raised(CustomError("declined", code=42)))
    assert type(got) is CustomError
    assert got.code == 42 and got.args == ("declined", 42)


def test_unpicklable_exception_is_rebuilt_from_its_type():
    info = codec.encode_exception(_raised(CarriesLock("locked out")))
    assert info["payload"] is None
    got = codec.decode_exception(info)
    assert type(got) is CarriesLock and str(got) == "locked out"
    assert "CarriesLock: locked out" in got.__blazing_traceback__


def test_exception_that_cannot_unpickle_becomes_remote_error():
    info = codec.encode_exception(_raised(NeedsTwoArgs(1, 2)))
    assert info["payload"] is None  # the round-trip check caught the broken __init__
    got = codec.decode_exception(info)
    assert type(got) is codec.RemoteError
    assert got.type_name == f"{__name__}.NeedsTwoArgs"
    assert got.message == "1-2"
    assert str(got) == f"{__name__}.NeedsTwoArgs: 1-2"


def test_local_exception_class_becomes_remote_error():
    class LocalError(Exception):
        pass

    got = exception_roundtrip(_raised(LocalError("only here")))
    assert isinstance(got, codec.RemoteError)
    assert got.type_name.endswith("LocalError")
    assert got.message == "only here"
    assert "LocalError: only here" in got.remote_traceback
    assert got.remote_traceback == got.__blazing_traceback__


def test_unknown_type_is_not_imported():
    assert "this" not in sys.modules  # importing it prints: a visible side effect
    info = {"type": "this.Boom", "message": "m", "traceback": "tb text", "payload": None}
    got = codec.decode_exception(info)
    assert isinstance(got, codec.RemoteError)
    assert (got.type_name, got.message, got.remote_traceback) == ("this.Boom", "m", "tb text")
    assert "this" not in sys.modules


def test_remote_error_str_and_reencoding():
    err = codec.RemoteError("builtins.ValueError", "bad thing", "remote tb")
    assert str(err) == "ValueError: bad thing"
    info = codec.encode_exception(err)
    fields = ("builtins.ValueError", "bad thing", "remote tb")
    assert (info["type"], info["message"], info["traceback"]) == fields
    got = codec.decode_exception(info)
    assert type(got) is codec.RemoteError
    assert (got.type_name, got.message, got.remote_traceback) == fields


def test_payload_with_other_secret_falls_back_to_type():
    info = codec.encode_exception(_raised(KeyError("k")))
    codec.set_secret(b"another secret")
    got = codec.decode_exception(info)
    assert type(got) is KeyError


def test_decode_exception_tolerates_garbage():
    assert isinstance(codec.decode_exception({}), Exception)
    got = codec.decode_exception({"type": 5, "message": None, "payload": b"junk"})
    assert isinstance(got, codec.RemoteError) and got.type_name == "5"
    assert isinstance(codec.decode_exception("not a dict"), Exception)
    short = codec.decode_exception({"type": "ValueError", "message": "short name"})
    assert type(short) is ValueError
    # Resolves to a non-exception attribute: never called.
    not_a_type = codec.decode_exception({"type": "os.system", "message": "echo hi"})
    assert isinstance(not_a_type, codec.RemoteError)
