"""The janitor mends, in real processes on a real redis-server, what no single failure
should leave behind but a bug might. Each case is planted by hand with redis-cli
while workers run with a 1 s janitor period; each is seen repaired (the run it
concerns finishes) and logged by a worker.
"""

from __future__ import annotations

import time
import uuid

import pytest

from blazing import codec
from tests.apps.durable import make_app
from tests.support.coordinator import Coordinator
from tests.support.logfile import wait_for_line
from tests.support.redis_server import RedisServer
from tests.support.workers import WorkerFleet

pytestmark = pytest.mark.timeout(120)
SECRET = "janitor-secret"


@pytest.fixture
def redis(redis_server):  # noqa: ARG001 - skips without redis-server
    """A Redis of the test's own: the janitor's scan for orphan notes walks the
    keyspace a page per period, and a shared server's keyspace is large."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def setup(redis, tmp_path):
    redis_server = redis
    ns = "jan" + uuid.uuid4().hex[:8]
    coord = Coordinator()
    fleet = WorkerFleet({"BLAZING_REDIS_URL": redis_server.url, "BLAZING_NAMESPACE": ns,
                         "BLAZING_SECRET": SECRET, "BLAZING_JANITOR_SECONDS": "1",
                         "BLAZING_TEST_COORD": coord.path},
                        log=tmp_path / "workers.log")
    client = make_app(redis_url=redis_server.url, namespace=ns, local_workers=False,
                      secret=SECRET)  # the workers mend: their log shows it
    yield ns, fleet, client, coord, tmp_path / "workers.log"
    client.stop_sync()
    fleet.close()
    coord.close()


def test_workflow_waiting_on_a_finished_call_is_told(setup, redis):
    redis_server = redis
    ns, fleet, client, coord, log = setup
    k = f"{{{ns}}}:"
    fleet.start("async")
    fleet.start("blocking", extra_env={"BLAZING_TEST_GATE": "add:2"})
    handle = client.five_steps(0)
    stuck = coord.arrival()  # add(1, 2) runs: the workflow waits on it
    # Plant: the call finished (with the right result, 3) but its waiter was
    # never told, as if its note had been lost.
    op = k + f"o:{handle.unit_id}:0.2"
    redis_server.cli("hset", op, "s", "3", "f", str(int(time.time() * 1000) - 60_000))
    redis_server.cli("eval", "redis.call('HSET', KEYS[1], 'r', ARGV[1]) return 1", "1", op,
                     codec.encode(3).decode("latin-1"))
    redis_server.cli("hdel", op, "w", "i")
    redis_server.cli("zrem", k + "running:blocking", f"{handle.unit_id}:0.2")
    line = wait_for_line(log, rf"janitor repaired missed-note: add {handle.unit_id}/0\.2")
    print(line)
    stuck.release()  # its own late completion is refused: the call has finished
    assert handle.result_sync(timeout=30) == 15


def test_lease_with_no_live_worker_is_taken_back(setup, redis):
    redis_server = redis
    ns, fleet, client, coord, log = setup
    k = f"{{{ns}}}:"
    handle = client.three_incs(1)  # queued: no worker yet
    member = redis_server.cli("zrange", k + "ready:async", "0", "0")
    assert member.endswith(f"{handle.unit_id}:0")
    # Plant: a holder that does not exist, with a lease an hour long.
    redis_server.cli("zrem", k + "ready:async", member)
    redis_server.cli("hset", k + f"o:{handle.unit_id}:0", "s", "2", "k", "ghost", "i", "7",
                     "t", "1", "b", str(int(time.time() * 1000)))
    redis_server.cli("zadd", k + "running:async", str(int(time.time() * 1000) + 3_600_000),
                     f"{handle.unit_id}:0")
    fleet.start("async")
    line = wait_for_line(log, r"janitor repaired orphan-lease: .*ghost.*taken back")
    print(line)
    assert handle.result_sync(timeout=30) == 4


def test_notes_nobody_reads_and_counters_behind_are_mended(setup, redis):
    redis_server = redis
    ns, fleet, client, coord, log = setup
    k = f"{{{ns}}}:"
    fleet.start("async")
    fleet.start("blocking", extra_env={"BLAZING_TEST_GATE": "add:2"})
    handle = client.five_steps(0)
    held = coord.arrival()  # a lease is out: add(1, 2) runs under it
    redis_server.cli("rpush", k + "nt:nobody", "a note for no one")
    redis_server.cli("set", k + "lease", "0")  # behind the lease handed out
    wait_for_line(log, r'janitor repaired orphan-notes: 1 notes for inbox "nobody"')
    wait_for_line(log, r"janitor repaired counter-behind: lease counter was 0")
    assert redis_server.cli("exists", k + "nt:nobody") == "0"
    held.release()
    assert handle.result_sync(timeout=30) == 15
