"""The round-trip counter (shared.redis_conn) counts request/response exchanges, not commands."""

from __future__ import annotations

import pytest

from shared.redis_conn import Lua, counting_client, preload_scripts
from tests.conftest import on_cluster


@pytest.fixture
def counted(redis_server, r):  # r: flushes the throwaway server
    client, counter = counting_client(redis_server.url, on_cluster())
    client.get("bench:{t}")  # connect first
    counter.n = 0
    yield client, counter
    client.close()


def test_plain_commands_count_one_each(counted):
    c, counter = counted
    c.set("bench:{t}:k", "1")
    c.get("bench:{t}:k")
    c.hgetall("bench:{t}:h")
    assert counter.n == 3


@pytest.mark.parametrize("transaction", [False, True])
def test_pipeline_counts_once(counted, transaction):
    c, counter = counted
    pipe = c.pipeline(transaction=transaction)
    for i in range(5):
        pipe.incr(f"bench:{{t}}:n{i}")  # one hash tag: a cluster's MULTI needs one slot
    assert pipe.execute() == [1] * 5
    assert counter.n == 1


def test_handshake_not_counted(redis_server):
    c, counter = counting_client(redis_server.url, on_cluster())
    c.get("bench:{t}:fresh")  # opens the connection (handshake) and sends one command
    assert counter.n == 1
    c.close()


def test_loaded_script_is_one_round_trip_and_cold_script_two(counted):
    c, counter = counted
    script = Lua("return 'bench-' .. ARGV[1]")
    c.script_flush()
    counter.n = 0
    # one key, so that a cluster sends both calls to the same node (a keyless one: any node)
    assert script(c, ["bench:{t}:s"], ["cold"]) == "bench-cold"  # EVALSHA fails, EVAL follows
    assert counter.n == 2
    counter.n = 0
    assert script(c, ["bench:{t}:s"], ["warm"]) == "bench-warm"
    assert counter.n == 1


def test_preload_loads_every_lua_object(counted):
    c, _ = counted
    script = Lua("return 'preloaded'")
    c.script_flush()
    assert preload_scripts(c) >= 1
    assert c.script_exists(script.sha) == [True]


def test_a_pipeline_inside_a_counted_request_is_one(counted):
    """What the bench relies on: N commands in one MULTI/EXEC plus one GET is two round trips."""
    c, counter = counted
    c.get("bench:{t}:token")
    tx = c.pipeline(transaction=True)
    tx.hset("bench:{t}:h", "a", 1)
    tx.sadd("bench:{t}:s", "x")
    tx.expire("bench:{t}:h", 60)
    tx.execute()
    assert counter.n == 2
