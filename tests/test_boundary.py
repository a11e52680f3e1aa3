"""The Go/Python boundary: whatever crosses it, the interpreter survives.

These tests talk to ``blazing._native.Session`` directly, below the runtime:
malformed frames of every sort come back as ``NativeError`` (code
``"invalid"``), replies larger than the reply buffer arrive intact, many
threads can share a session, and a forked child gets ``ForkedProcessError``
instead of a hang.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time

import msgpack
import pytest

import blazing._native as native
from blazing import frames
from blazing.errors import EngineClosedError, ForkedProcessError, NativeError
from blazing.frames import CMD_CANCEL as CANCEL
from blazing.frames import CMD_CAPACITY as CAPACITY
from blazing.frames import CMD_COMPLETE as COMPLETE
from blazing.frames import CMD_SUBMIT as SUBMIT
from blazing.frames import CMD_WATCH as WATCH
from blazing.frames import EV_DELIVER, EV_RESULT, SUCCEEDED

# The valid frames come from the contract's builders; the malformed ones below
# are made by hand on purpose.


def submit_cmd(unit: str, token: int = 1, args: bytes | None = b"\x90", path: str = "0",
               parent: str = "", timeout_ms: int = 0) -> list:
    depth = 0 if not parent else path.count(".")
    return frames.submit(unit, path, parent, depth, "flow", frames.LANE_ASYNC, args, token,
                         0, 0, 0, timeout_ms, 0)


def complete_cmd(unit: str, result: bytes | None = b"\xc0", path: str = "0") -> list:
    return frames.complete(unit, path, 1, True, result, None, False)


VALID_SUBMIT = msgpack.packb([submit_cmd("u-valid", token=11)])


@pytest.fixture
def session():
    """A session with no slots: submissions are stored, nothing is delivered."""
    s = native.Session({"inbox": "t", "async": 0, "blocking": 0})
    yield s
    s.close()


@pytest.fixture
def working_session():
    """A session with one async slot, so a submission is delivered at once."""
    s = native.Session({"inbox": "t", "async": 1, "blocking": 0})
    yield s
    s.close()


def assert_invalid(s: native.Session, frame: bytes) -> NativeError:
    with pytest.raises(NativeError) as info:
        s.batch_raw(frame)
    exc = info.value
    assert type(exc) is NativeError, frame[:40]
    assert exc.code == "invalid", (exc.code, str(exc), frame[:40])
    assert str(exc), "the error carries a message"
    return exc


def assert_still_works(s: native.Session, unit: str, delivers: bool = False) -> None:
    """A valid submission after the garbage is accepted; on a session with a
    free slot it is delivered in the reply."""
    errors, events = s.batch([submit_cmd(unit, token=99)])
    assert errors == []
    if delivers:
        assert [ev[:3] for ev in events] == [[EV_DELIVER, unit, "0"]]
    else:
        assert events == []
        assert s.get(unit, "0")[6] == 1  # pending


# -------------------------------------------------------------- garbage in


def random_frames() -> list[bytes]:
    rnd = random.Random(7)
    return [rnd.randbytes(rnd.randint(0, 200)) for _ in range(3000)]


def test_random_frames_are_refused(session, working_session):
    frames = random_frames()
    for s in (session, working_session):
        refused = 0
        for frame in frames:
            try:
                s.batch_raw(frame)
            except NativeError as exc:
                assert type(exc) is NativeError
                assert exc.code == "invalid", (exc.code, str(exc), frame)
                refused += 1
        # With this seed no random frame happens to be a valid batch.
        assert refused == len(frames)
    assert_still_works(session, "after-random")
    assert_still_works(working_session, "after-random", delivers=True)


def test_every_truncation_of_a_valid_submit_is_refused(session):
    for n in range(len(VALID_SUBMIT)):
        assert_invalid(session, VALID_SUBMIT[:n])
    for extra in (b"\x00", b"\xc0", VALID_SUBMIT):
        exc = assert_invalid(session, VALID_SUBMIT + extra)
        assert "trailing" in str(exc)
    assert session.batch_raw(VALID_SUBMIT) == msgpack.packb([[], []])


WRONG_TYPES = {
    "unit is an int": [SUBMIT, 5, "0", "", 0, "flow", 0, None, 1, 0, 0, 0, 0, 0],
    "depth is a string": [SUBMIT, "u", "0", "", "0", "flow", 0, None, 1, 0, 0, 0, 0, 0],
    "depth is a bool": [SUBMIT, "u", "0", "", True, "flow", 0, None, 1, 0, 0, 0, 0, 0],
    "depth is a float": [SUBMIT, "u", "0", "", 0.0, "flow", 0, None, 1, 0, 0, 0, 0, 0],
    "negative depth": [SUBMIT, "u", "0", "", -1, "flow", 0, None, 1, 0, 0, 0, 0, 0],
    "lane out of range": [SUBMIT, "u", "0", "", 0, "flow", 2, None, 1, 0, 0, 0, 0, 0],
    "args is a string": [SUBMIT, "u", "0", "", 0, "flow", 0, "args", 1, 0, 0, 0, 0, 0],
    "args is an int": [SUBMIT, "u", "0", "", 0, "flow", 0, 7, 1, 0, 0, 0, 0, 0],
    "token is bytes": [SUBMIT, "u", "0", "", 0, "flow", 0, None, b"1", 0, 0, 0, 0, 0],
    "negative timeout": [SUBMIT, "u", "0", "", 0, "flow", 0, None, 1, 0, 0, 0, -1, 0],
    "submit too short": [SUBMIT, "u", "0", "", 0, "flow", 0, None, 1, 0, 0, 0, 0],
    "complete ok is an int": [COMPLETE, "u", "0", 1, 1, None, None, False],
    "failed completion without error": [COMPLETE, "u", "0", False, None, None, False],
    "error with 3 fields": [COMPLETE, "u", "0", False, None, ["T", "M", "TB"], False],
    "error type is an int": [COMPLETE, "u", "0", False, None, [1, "M", "TB", None], False],
    "capacity lane 9": [CAPACITY, 9, 1],
    "capacity delta is a string": [CAPACITY, 0, "1"],
    "cancel reason is an int": [CANCEL, "u", "", 0],
    "watch token is a string": [WATCH, "u", "0", "1"],
    "unknown command": [42, "u"],
    "command code is a string": ["1", "u"],
    "empty command": [],
    "command is a map": {"code": 1},
    "command is a string": "submit",
}


@pytest.mark.parametrize("name", sorted(WRONG_TYPES))
def test_wrong_types_are_refused(session, name):
    assert_invalid(session, msgpack.packb([WRONG_TYPES[name]]))
    # The valid command in front of the bad one does not run either.
    assert_invalid(session, msgpack.packb([submit_cmd("before-bad"), WRONG_TYPES[name]]))
    with pytest.raises(NativeError) as info:
        session.get("before-bad", "0")
    assert info.value.code == "not_found"


NOT_BATCHES = {
    "empty buffer": b"",
    "nil": b"\xc0",
    "an int": b"\x05",
    "a map": msgpack.packb({"a": 1}),
    "a string": msgpack.packb("hello"),
    "reserved code": b"\xc1",
    "text": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "json": b'[[1, "u", "0", "", 0, "flow", 0, null, 1, 0, 0, 0, 0, 0]]',
    "zeros": bytes(64),
    "ff": b"\xff" * 64,
    "pickle": b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.",
    "array32 claiming 2^32-1": b"\xdd\xff\xff\xff\xff",
    "array32 claiming 2^32-1 with items": b"\xdd\xff\xff\xff\xff" + VALID_SUBMIT[1:],
    "array16 claiming 65535": b"\xdc\xff\xff\x90",
    "map32 claiming 2^32-1": b"\xdf\xff\xff\xff\xff",
    "bin32 claiming 2^32-1": b"\xc6\xff\xff\xff\xff" + b"x" * 10,
    "str32 claiming 2^32-1": b"\xdb\xff\xff\xff\xff" + b"x" * 10,
    "command claiming 2^32-1 fields": b"\x91\xdd\xff\xff\xff\xff",
    "deeply nested arrays": b"\x91" * 100_000 + b"\xc0",
}


@pytest.mark.parametrize("name", sorted(NOT_BATCHES))
def test_non_batches_are_refused(session, name):
    assert_invalid(session, NOT_BATCHES[name])
    assert_still_works(session, "after-" + name)


def submit_prefix(field: int) -> bytes:
    """A one-submit batch encoded up to (not including) field ``field``."""
    cmd = submit_cmd("u")
    return b"\x91\x9e" + b"".join(msgpack.packb(v) for v in cmd[:field])


@pytest.mark.parametrize("field,header", [
    (1, b"\xdb\xff\xff\xff\xff"),  # unit: str32 claiming 2^32-1 bytes
    (5, b"\xdb\xff\xff\xff\xff"),  # name
    (7, b"\xc6\xff\xff\xff\xff"),  # args: bin32 claiming 2^32-1 bytes
])
def test_huge_length_inside_a_command_is_refused(session, field, header):
    frame = submit_prefix(field) + header + b"only a few bytes"
    start = time.monotonic()
    assert_invalid(session, frame)
    assert time.monotonic() - start < 30
    assert_still_works(session, f"after-huge-{field}")


def test_huge_bin_length_does_not_reserve_gigabytes():
    """A bin header claiming 2^32-1 bytes, with a few bytes after it, must be
    refused without allocating what it claims. Measured in a fresh process
    (VmPeak, the address-space high-water mark) so nothing else counts."""
    frame = submit_prefix(7) + b"\xc6\xff\xff\xff\xff" + b"only a few bytes"
    code = textwrap.dedent(f"""
        import blazing._native as native
        from blazing.errors import NativeError

        def vm_peak_kib():
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmPeak:"):
                        return int(line.split()[1])

        s = native.Session({{"inbox": "t", "async": 0, "blocking": 0}})
        s.batch_raw(b"\\x90")
        before = vm_peak_kib()
        try:
            s.batch_raw({frame!r})
        except NativeError as exc:
            assert exc.code == "invalid", exc.code
        else:
            raise SystemExit("accepted")
        print(vm_peak_kib() - before)
        s.close()
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    grown_mib = int(out.stdout.strip()) // 1024
    assert grown_mib < 256, (
        f"refusing a {len(frame)}-byte frame grew the address space by {grown_mib} MiB")


def test_bytes_where_a_string_is_expected_is_refused(working_session):
    """A unit given as bytes (msgpack bin) instead of str. The core decodes
    string fields with msgpack's lenient DecodeString, which takes bin too,
    without checking UTF-8; the unit then comes back as a msgpack str in the
    deliver event, and Python cannot decode the reply (UnicodeDecodeError),
    so the delivery is lost while the core holds the operation. Expected: the
    core refuses the frame like any other type error."""
    s = working_session
    cmd = submit_cmd("x")
    cmd[1] = b"\xff\xfe"
    with pytest.raises(NativeError) as info:
        s.batch([cmd])
    assert info.value.code == "invalid"


def test_deeply_nested_arrays_in_every_call(session):
    nested = b"\x91" * 100_000 + b"\xc0"
    assert_invalid(session, nested)
    with pytest.raises(NativeError) as info:
        session.get_raw(nested)
    assert info.value.code == "invalid"
    for bad in (b"", b"\xc1", b"\xdd\xff\xff\xff\xff", msgpack.packb(["u"])):
        with pytest.raises(NativeError) as info:
            session.get_raw(bad)
        assert info.value.code == "invalid"


# ------------------------------------------------------------------ config


@pytest.mark.parametrize("config", [
    {},
    {"inbox": ""},
    {"inbox": 5},
    {"inbox": "t", "async": -1},
    {"inbox": "t", "blocking": -3},
    {"inbox": "t", "lease_ms": -1},
    {"inbox": "t", "async": "4"},
    {"inbox": "t", "store": "redis"},
    ["t", 1],
    "inbox",
    None,
])
def test_bad_config_is_refused(config):
    with pytest.raises(NativeError) as info:
        native.Session(config)
    assert type(info.value) is NativeError
    assert info.value.code == "invalid"
    assert str(info.value)


# ----------------------------------------------------------------- closing


def test_closed_session_raises_engine_closed():
    s = native.Session({"inbox": "t", "async": 1, "blocking": 0})
    s.batch([submit_cmd("u")])
    s.close()
    s.close()  # idempotent: the second close does not reach Go
    calls = {
        "batch_raw": lambda: s.batch_raw(VALID_SUBMIT),
        "batch": lambda: s.batch([]),
        "wait": lambda: s.wait(10),
        "get": lambda: s.get("u", "0"),
        "stats": lambda: s.stats(),
    }
    for name, call in calls.items():
        with pytest.raises(EngineClosedError) as info:
            call()
        # The handle is gone from the core, which answers bad_handle (-6);
        # _native._take maps that, like "closed" (-3), to EngineClosedError
        # (whose code is "closed") and keeps the core's message.
        assert type(info.value) is EngineClosedError, name
        assert info.value.code == "closed", name
        assert "no open engine with handle" in str(info.value), name


def test_close_wakes_a_blocked_wait_with_engine_closed():
    s = native.Session({"inbox": "t", "async": 0, "blocking": 0})
    outcome: list[BaseException | list] = []

    def waiter():
        try:
            outcome.append(s.wait(20_000))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    t = threading.Thread(target=waiter, daemon=True)
    t.start()
    t.join(0.2)
    assert t.is_alive(), f"wait returned with nothing to wait for: {outcome}"
    start = time.monotonic()
    s.close()
    t.join(10)
    assert not t.is_alive(), "close did not wake the wait"
    assert time.monotonic() - start < 10
    assert len(outcome) == 1
    assert type(outcome[0]) is EngineClosedError
    assert outcome[0].code == "closed"


# ---------------------------------------------------------- large replies


def test_reply_larger_than_the_buffer_arrives_intact(working_session):
    s = working_session
    big = random.Random(3).randbytes(1 << 20)
    assert len(big) > native._BUF_SIZE
    raw = s.batch_raw(msgpack.packb([submit_cmd("big", token=5, args=big)]))
    assert len(raw) > native._BUF_SIZE
    errors, events = msgpack.unpackb(raw)
    assert errors == []
    assert len(events) == 1
    ev = events[0]
    assert ev[:7] == [EV_DELIVER, "big", "0", "", 0, "flow", 0]
    assert ev[7] == big
    assert ev[8] == 1

    # And back: a 1 MiB result comes out in the result event.
    errors, events = s.batch([complete_cmd("big", result=big[::-1])])
    assert errors == []
    assert events == [[EV_RESULT, 5, SUCCEEDED, big[::-1], None]]

    # Many big replies in a row: the malloc'd buffers are freed each time
    # (bz_free), and small replies still use the fixed buffer.
    for i in range(20):
        _, events = s.batch([submit_cmd(f"big{i}", token=100 + i, args=big)])
        assert events[0][7] == big
        _, events = s.batch([complete_cmd(f"big{i}", result=None)])
        assert events == [[EV_RESULT, 100 + i, SUCCEEDED, None, None]]
    assert s.batch([]) == ([], [])


# ------------------------------------------------------------- concurrency


def test_concurrent_calls_from_eight_threads():
    threads_n, cycles = 8, 500
    s = native.Session({"inbox": "t", "async": threads_n, "blocking": 0})
    cond = threading.Condition()
    delivered: set[str] = set()
    results: dict[int, list] = {}
    nudges = [0]
    failures: list[BaseException] = []

    def run(cmds: list) -> None:
        errors, events = s.batch(cmds)
        assert errors == [], errors
        with cond:
            for ev in events:
                if ev[0] == EV_DELIVER:
                    delivered.add(ev[1])
                elif ev[0] == EV_RESULT:
                    results[ev[1]] = ev
            cond.notify_all()

    def until(seen) -> None:
        # Another thread's reply may carry this thread's event; wait for it
        # to be noted. If no reply has it, an empty batch pumps.
        deadline = time.monotonic() + 10
        while True:
            with cond:
                if cond.wait_for(seen, timeout=0.05):
                    return
            assert time.monotonic() < deadline, "event never arrived"
            with cond:
                nudges[0] += 1
            run([])

    def worker(w: int) -> None:
        try:
            for i in range(cycles):
                unit, token = f"w{w}-{i}", w * cycles + i + 1
                run([submit_cmd(unit, token=token)])
                until(lambda unit=unit: unit in delivered)
                run([complete_cmd(unit, result=unit.encode())])
                until(lambda token=token: token in results)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(threads_n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
            assert not t.is_alive(), "a worker thread hung"
    finally:
        s.close()
    assert failures == []
    assert len(results) == threads_n * cycles
    for w in range(threads_n):
        for i in range(cycles):
            ev = results[w * cycles + i + 1]
            assert ev[2] == SUCCEEDED and ev[3] == f"w{w}-{i}".encode()
    print(f"pumps needed to find a delivery: {nudges[0]}")


# -------------------------------------------------------------------- fork


def test_forked_child_gets_forked_process_error():
    native.version()  # the library is loaded in this process
    s = native.Session({"inbox": "t", "async": 1, "blocking": 0})
    try:
        s.batch([submit_cmd("before-fork")])
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            try:
                os.close(r)
                names = []
                for call in (native.version,
                             lambda: s.batch([]),
                             lambda: native.Session({"inbox": "c"})):
                    try:
                        call()
                        names.append("no error")
                    except BaseException as exc:  # noqa: BLE001 - reported to the parent
                        names.append(type(exc).__name__)
                os.write(w, ",".join(names).encode())
            finally:
                os._exit(0)
        os.close(w)
        try:
            ready, _, _ = select.select([r], [], [], 20)
            report = os.read(r, 1024).decode() if ready else None
        finally:
            os.close(r)
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            select.select([], [], [], 0.01)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child hung (it reported {report!r})")
        assert report is not None, "the forked child reported nothing"
        assert report.split(",") == ["ForkedProcessError"] * 3
        assert os.waitstatus_to_exitcode(status) == 0
        # The parent is unaffected.
        assert s.batch([complete_cmd("before-fork")])[0] == []
        assert native.version().startswith("blazing-core")
    finally:
        s.close()
    assert issubclass(ForkedProcessError, RuntimeError)


def test_library_loads_lazily():
    code = textwrap.dedent("""
        def loaded():
            with open("/proc/self/maps") as f:
                return "libblazing.so" in f.read()

        import blazing
        import blazing._native
        after_import = loaded()
        app = blazing.Blazing()

        @app.workflow
        async def double(x: int, services=None) -> int:
            return 2 * x

        after_create = loaded()
        result = app.run_sync("double", 21)
        after_run = loaded()
        app.stop_sync()
        print(after_import, after_create, after_run, result)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    after_import, after_create, after_run, result = out.stdout.split()
    assert after_import == "False", "import blazing must not load the Go core"
    assert after_create == "False", "creating an app must not load the Go core"
    assert after_run == "True"
    assert result == "42"
