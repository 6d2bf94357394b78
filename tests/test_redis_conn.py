"""The round-trip counter (shared.redis_conn) counts request/response exchanges, not commands;
``Reads`` sends a page's reads in one of them, its replies shaped as a pipeline's."""

from __future__ import annotations

import pytest
import redis
from redis.exceptions import DataError, NoScriptError, ResponseError

from shared.redis_conn import Lua, Reads, batch, counting_client, preload_scripts
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


# --- Reads: a page's reads in one round trip, shaped as a pipeline shapes them ----------------
def _seed(c) -> None:
    c.hset("bench:{t}:h", mapping={"a": "1", "b": "2"})
    c.sadd("bench:{t}:s", "x", "y")
    c.zadd("bench:{t}:z", {"m": 2.5})


READS = [("HMGET", "bench:{t}:h", "a", "nope"), ("SMEMBERS", "bench:{t}:s"),
         ("ZSCORE", "bench:{t}:z", "m"), ("ZSCORE", "bench:{t}:z", "absent"),
         ("HGETALL", "bench:{t}:h"), ("HGETALL", "bench:{t}:none"), ("HGET", "bench:{t}:h", "b"),
         ("ZRANGE", "bench:{t}:z", 0, -1)]


def test_reads_answer_as_a_pipeline_does_in_one_round_trip(counted):
    c, counter = counted
    _seed(c)
    pipe = c.pipeline(transaction=False)
    for command in READS:
        pipe.execute_command(*command)
    expected = pipe.execute()
    assert expected[1] == {"x", "y"} and expected[2] == 2.5 and expected[4] == {"a": "1", "b": "2"}
    counter.n = 0
    reads = Reads(c)
    for command in READS:
        reads.add(*command)
    assert reads.execute() == expected
    assert counter.n == 1
    assert reads.execute() == []  # what was sent is not sent again


def test_reads_take_a_pipelines_command_methods_and_their_options(counted):
    """Commands queued by redis-py's own methods (an operation's prefetched reads), options
    included: ZRANGE's withscores shapes pairs, XREAD's reply a stream listing."""
    c, counter = counted
    _seed(c)
    entry = c.xadd("bench:{t}:x", {"f": "v"})

    def queue(pipe):
        pipe.zrange("bench:{t}:z", 0, -1, withscores=True)
        pipe.xread({"bench:{t}:x": "0"}, count=5)
        pipe.hmget("bench:{t}:h", ["a", "b"])
        pipe.exists("bench:{t}:h", "bench:{t}:none")
        return pipe.execute()

    expected = queue(c.pipeline(transaction=False))
    assert expected[0] == [("m", 2.5)] and expected[1][0][1][0][0] == entry
    counter.n = 0
    assert queue(Reads(c)) == expected
    assert counter.n == 1


def test_reads_queue_a_script(counted):
    c, counter = counted
    script = Lua("return redis.call('HGET', KEYS[1], ARGV[1])")
    preload_scripts(c)
    _seed(c)
    counter.n = 0
    reads = Reads(c).add("HGET", "bench:{t}:h", "a")
    assert script(c, ["bench:{t}:h"], ["b"], pipeline=reads) is reads
    assert reads.execute() == ["1", "2"]
    assert counter.n == 1


def test_reads_raise_an_error_reply_and_leave_the_connection_in_step(r):
    _seed(r)
    client_id = None if on_cluster() else Reads(r).add("CLIENT", "ID").execute()[0]
    reads = Reads(r).add("HGET", "bench:{t}:h", "a").add("INCR", "bench:{t}:h").add(
        "HGET", "bench:{t}:h", "b")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        reads.execute()
    if not on_cluster():  # the same connection, kept: every reply was read before the raise
        assert Reads(r).add("CLIENT", "ID").execute() == [client_id]
    for _ in range(5):  # every pooled connection answers the command it was asked
        assert Reads(r).add("HGET", "bench:{t}:h", "b").add("SMEMBERS", "bench:{t}:s").execute(
            ) == ["2", {"x", "y"}]


def test_reads_of_an_unloaded_script_raise_noscript(r):
    reads = Reads(r)
    reads.execute_command("EVALSHA", "0" * 40, 1, "bench:{t}:h")
    with pytest.raises(NoScriptError):
        reads.execute()


@pytest.mark.skipif(on_cluster(), reason="a cluster's Reads is redis-py's cluster pipeline")
def test_reads_try_once_more_when_the_connection_drops(r, monkeypatch):
    """The connection breaks after the commands were written (a Redis restart, a proxy's idle
    cut): the reads go again on a fresh connection, as the client's Retry would."""
    _seed(r)
    conn = r.connection_pool.get_connection()
    r.connection_pool.release(conn)  # the one Reads takes next
    real, broken = conn.read_response, [True]

    def drop_once(*args, **kwargs):
        if broken:
            broken.clear()
            raise redis.ConnectionError("Connection closed by server.")
        return real(*args, **kwargs)

    monkeypatch.setattr(conn, "read_response", drop_once)
    assert Reads(r).add("HGET", "bench:{t}:h", "a").add("SCARD", "bench:{t}:s").execute() == [
        "1", 2]
    assert not broken  # it did break once


def test_reads_refuse_an_argument_redis_cannot_take(r):
    with pytest.raises(DataError):
        Reads(r).add("HGET", "bench:{t}:h", None).execute()


def test_scripts_queued_on_a_pipeline_cost_no_round_trip_of_their_own(counted):
    """redis-py's cluster pipeline asks a node for a script's keys (COMMAND GETKEYS) unless it is
    told where the script goes (shared.redis_conn.route): on a cluster, three scripts in a
    pipeline were four round trips."""
    c, counter = counted
    script = Lua("return redis.call('HGET', KEYS[1], ARGV[1])")
    preload_scripts(c)
    _seed(c)
    counter.n = 0
    pipe = c.pipeline(transaction=False)
    for field in ("a", "b", "a"):
        script(c, ["bench:{t}:h"], [field], pipeline=pipe)
    assert pipe.execute() == ["1", "2", "1"]
    assert counter.n == 1
    counter.n = 0
    assert batch(c, (script, ["bench:{t}:h"], ["b"]), (script, ["bench:{t}:h"], ["a"])) == [
        "2", "1"]
    assert counter.n == 1
