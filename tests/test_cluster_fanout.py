"""The relay's fan-out on a Redis Cluster: it reads the inboxes from the node that serves the
``{msg}`` slot, and follows that slot to another node after a MOVED, with no restart.

A cluster of its own (3 masters), whatever the suite runs on, since a test moves a slot."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from relay.fanout import FanOut
from shared import keys
from shared.auth import Caller
from shared.redis_conn import connect_cluster
from shared.storage import messages
from stack.embedded import EmbeddedCluster
from tests.conftest import make_config


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    c = EmbeddedCluster(tmp_path_factory.mktemp("fanout-cluster"), appendonly=False).start()
    yield c
    c.stop()


class Conn:
    """What the fan-out needs of a relay connection; records the lines pushed to it."""

    def __init__(self, server_id: str) -> None:
        self.caller = Caller("server", server_id, server_id)
        self.replaying = self.closed = False
        self.replay_gen = 0
        self.tail = self.last_id = "0-0"
        self.lines: list[dict[str, Any]] = []

    def send(self, line: bytes) -> None:
        self.lines.append(json.loads(line))


def msg_owner(r: Any) -> Any:
    return r.nodes_manager.get_node_from_slot(r.keyslot(keys.inbox_prefix()))


def move_slot(r: Any, slot: int, src: Any, dst: Any) -> None:
    """Migrate one slot and its keys from node ``src`` to node ``dst`` (CLUSTER SETSLOT ...)."""
    a, b = r.get_redis_connection(src), r.get_redis_connection(dst)
    src_id, dst_id = a.execute_command("CLUSTER MYID"), b.execute_command("CLUSTER MYID")
    b.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
    a.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
    while names := a.execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
        a.execute_command("MIGRATE", dst.host, dst.port, "", 0, 5000, "KEYS", *names)
    for node in r.get_primaries():
        r.get_redis_connection(node).execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)


def test_fanout_reads_the_msg_slots_node_and_follows_it_after_moved(cluster):
    r = connect_cluster(cluster.url)
    for node in r.get_primaries():
        r.get_redis_connection(node).flushall()
    config = make_config(cluster.url, redis_cluster=1, redis_queue_url="redis://unused:1")
    sid = "srv-a"
    r.sadd(keys.servers_all(), sid)
    # start from a node that does not serve {msg}: the reader must find the one that does
    first = next(n for n in r.get_primaries() if n.name != msg_owner(r).name)
    pool = ThreadPoolExecutor(4)
    fan = FanOut(f"redis://{first.host}:{first.port}", r, pool)
    conn = Conn(sid)

    async def until(check: Any, what: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, what
            await asyncio.sleep(0.02)

    async def scenario() -> None:
        task = asyncio.get_running_loop().create_task(fan.run())
        fan.subscribe(conn, sid, "0-0")
        await until(lambda: fan.blocked, "the reader blocks on XREAD")
        deliver = lambda body: messages.deliver(r, config, sid, "x", "message",  # noqa: E731
                                                {"body": body})
        await asyncio.get_running_loop().run_in_executor(pool, deliver, "before")
        await until(lambda: len(conn.lines) == 1, "the first push")
        src = msg_owner(r)
        dst = next(n for n in r.get_primaries() if n.name != src.name)
        await asyncio.get_running_loop().run_in_executor(
            pool, move_slot, r, r.keyslot(keys.inbox_prefix()), src, dst)
        await asyncio.get_running_loop().run_in_executor(pool, deliver, "after")
        await until(lambda: len(conn.lines) == 2, "a push after the slot moved")
        assert fan.node_url.endswith(f":{dst.port}")
        await fan.stop()
        await asyncio.wait_for(task, 10)
        await fan.close()

    asyncio.run(scenario())
    pool.shutdown()
    assert [line["data"]["body"] for line in conn.lines] == ["before", "after"]
    r.close()
