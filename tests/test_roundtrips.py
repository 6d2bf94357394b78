"""Every operation but register/login costs at most 2 Redis round trips, auth included (an
audited one a third for its audit entry; ban.create's ordered steps one more: bench.roundtrips).

Counted exactly (a pipeline or MULTI/EXEC block is one exchange) with the counting connection of
``shared.redis_conn``: each operation's documented example, sent in the world of real fixtures
(tests/world.py) through an app whose Redis client counts, so a change that adds a round trip
fails here first. On a Redis Cluster (``pytest --cluster``) every node's exchanges count (a
pipeline costs one per node it touches): the aim there is at most 3, and a prefetching read at
most 2 (the credential's node and the data's); ``python -m bench --cluster`` prints the figures
per operation.
"""

from __future__ import annotations

from typing import Any

from rq.utils import get_version

from shared.redis_conn import counting_client, preload_scripts
from shared.registry import load
from shared.web import apidoc
from tests.conftest import on_cluster
from tests.world import real_example, world

# KDF-bound, not held to the target (player.password: the credential check, the login-lockout
# count that must precede its password check, the write: 3); docs/DESIGN.md "Round trips"
EXCLUDED = ("player.register", "session.login", "player.password")
LIMIT = 3 if on_cluster() else 2
# one more for the audit entry an audited operation appends after its action; presence.join with
# an ip reads the ban index first; ban.create and ban.lift run ordered steps across {bans}, the
# player's group and {msg}; record.submit checks the player's account and heartbeat (their own
# slots) before its board script writes, so no script spans slots (docs/DESIGN.md "Round
# trips" and "Moderation", docs/CLUSTER.md "Operations in several steps"); clan.invite reads the
# invitee's account id (its own slot) before its clan script records the invitation for it;
# mail.send spends the sender's send budget (their group) before the recipient's script (README
# "Abuse budgets")
MORE = {"ban.create": 3, "ban.lift": 1, "presence.join": 1, "record.submit": 1,
        "clan.invite": 1, "mail.send": 1,
        # reads every group that holds something of the player, in turn: their keys, the
        # boards' meta, the records, the clan, the audit log (rare: a data export)
        "player.export": 4}
# On a cluster every node's exchange counts, and an operation whose ordered steps touch several
# groups pays one exchange per node per step (docs/CLUSTER.md "Operations in several steps",
# where these measured figures are listed): held to what they cost now, so a change that adds
# one fails here.
CLUSTER = {"ban.create": 8, "ban.lift": 5, "clan.accept": 3, "clan.create": 3,
           "clan.invite": 4, "mail.send": 4, "player.delete": 6, "presence.join": 5,
           "presence.leave": 3, "record.submit": 4, "server.delete": 8}


# The cluster client now and then re-reads the slot map inside a request (measured: the same
# operation counted n or n + 1 in successive runs), which counts as one more exchange.
SLOT_MAP = 1 if on_cluster() else 0


def allowed(op: Any) -> int:
    if on_cluster() and op.name in CLUSTER:
        return CLUSTER[op.name] + SLOT_MAP
    return LIMIT + (1 if op.audit else 0) + MORE.get(op.name, 0) + SLOT_MAP


# a prefetching read: the credential's node and the data's (message.read: the inbox and the
# server's poll slots; name.check: the clan and the player)
PREFETCH = 3 + SLOT_MAP if on_cluster() else 1


def count(api: Any, r: Any, redis_server: Any, config: Any) -> dict[str, dict[str, int]]:
    """``{op name: {"roundtrips": n, "status": http status}}`` for every operation."""
    from wsgi import create_app

    counting, counter = counting_client(redis_server.url, cluster=on_cluster())
    get_version(counting)  # RQ asks a client for the server version once: the steady state
    client = create_app(config, counting).test_client()
    out: dict[str, dict[str, int]] = {}
    for name, op in sorted(load().items()):
        r.flushall()
        real, callers = world(api, name)
        ex = real_example(op, real)
        preload_scripts(counting)
        counting.ping()  # the connection is open: its handshake is not counted
        counter.n = 0
        resp = client.open(ex.url, method=ex.method, headers=callers[apidoc.caller_kind(op)],
                           json=ex.body)
        out[name] = {"roundtrips": counter.n, "status": resp.status_code}
    counting.close()
    return out


def test_every_operation_within_two_round_trips(api, r, redis_server, config):
    counts = count(api, r, redis_server, config)
    assert set(counts) == set(load())
    failed = {k: v["status"] for k, v in counts.items() if v["status"] >= 400}
    assert not failed, failed  # each request is a real, successful call
    over = {k: v["roundtrips"] for k, v in counts.items()
            if k not in EXCLUDED and v["roundtrips"] > allowed(load()[k])}
    assert not over, over


def test_prefetching_reads_cost_one_round_trip(api, r, redis_server, config):
    prefetching = {name for name, op in load().items() if op.prefetch}
    assert {"mail.list", "message.read", "player.settings.get", "mail.unread_count"} <= prefetching
    counts = count(api, r, redis_server, config)
    over = {name: counts[name]["roundtrips"] for name in prefetching
            if not 1 <= counts[name]["roundtrips"] <= PREFETCH}
    assert not over, over


def test_only_reads_prefetch():
    """Prefetched commands run before the credential is proven, so they must not write."""
    assert all(op.method == "GET" for op in load().values() if op.prefetch)
