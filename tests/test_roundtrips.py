"""Every operation but register/login costs at most 2 Redis round trips, auth included (an
audited one a third for its audit entry; ban.create's ordered steps one more: bench.roundtrips).

Counted exactly (a pipeline or MULTI/EXEC block is one exchange) with the benchmark's counting
connection, over the benchmark's world, so a change that adds a round trip fails here first.
"""

from __future__ import annotations

import dataclasses

from bench import roundtrips
from bench.world import World
from shared.registry import load


def test_every_operation_within_two_round_trips(redis_server, r, config):
    registry = load()
    config = dataclasses.replace(config, mailbox_max=10**6)
    counts = roundtrips.count(redis_server.url, config, registry,
                              lambda rc: World(rc, config, registry, prefix="t").build())
    assert set(counts) == set(registry)
    failed = {k: v["status"] for k, v in counts.items() if v["status"] >= 400}
    assert not failed, failed  # each request is a real, successful call
    over = roundtrips.over(counts)
    assert not over, over


def test_prefetching_reads_cost_one_round_trip(redis_server, r, config):
    registry = load()
    prefetching = {name for name, op in registry.items() if op.prefetch}
    assert {"mail.list", "message.read", "player.settings.get", "mail.unread_count"} <= prefetching
    counts = roundtrips.count(redis_server.url, config, registry,
                              lambda rc: World(rc, config, registry, prefix="u").build())
    assert {name: counts[name]["roundtrips"] for name in prefetching} == dict.fromkeys(
        prefetching, 1)


def test_only_reads_prefetch():
    """Prefetched commands run before the credential is proven, so they must not write."""
    assert all(op.method == "GET" for op in load().values() if op.prefetch)
