"""Scenario 2: Redis round trips per operation, counted exactly.

A round trip is one request/response exchange with Redis, counted by
``shared.redis_conn.counting_client`` (the tests count with it too). Lua scripts are loaded
before counting (``shared.redis_conn.preload_scripts``), so the figures are the steady state: a
cold EVALSHA that falls back to EVAL costs one more, once per Redis restart.

Each operation runs in-process through the Flask test client, so the bearer-token lookup (the
auth round trip) is included.

On a Redis Cluster (``config.redis_cluster``) every node's connections count: a command is one
exchange with the node that serves its slot, a pipeline one exchange per node it touches (sent to
all of them before any reply is read). Reading the slot map (at start, after a MOVED) counts too,
so a figure above the single-node one shows what a cluster costs.
"""

from __future__ import annotations

from typing import Any

from shared.config import Config
from shared.redis_conn import counting_client, preload_scripts
from shared.registry import Operation

# KDF-bound, not held to the target (player.password: the credential check, the login-lockout
# count that must precede its password check, the write: 3)
EXCLUDED = ("player.register", "session.login", "player.password")
# Held to 2, plus: one for the audit entry an audited operation (Operation.audit) appends after
# its action; and for ban.create, whose ordered steps span groups (checks; the ban in {bans};
# one pipeline of player copy, inbox delivery and outbox), one more.
MORE = {"ban.create": 1}


def allowed(op: Operation) -> int:
    """The most round trips ``op`` may cost."""
    return 2 + (1 if op.audit else 0) + MORE.get(op.name, 0)


def count(url: str, config: Config, registry: dict[str, Operation], world_factory: Any) -> dict:
    """``{op name: {"roundtrips": n, "status": http status}}`` for every operation."""
    from bench.world import requests_for
    from wsgi import create_app

    r, counter = counting_client(url, bool(config.redis_cluster))
    world = world_factory(r)
    client = create_app(config, r).test_client()
    preload_scripts(r)
    out: dict[str, dict[str, int]] = {}
    for name, op in sorted(registry.items()):
        world.refresh()
        req = requests_for(world, op, 1)[0]
        token = f"rt{world.uniq()}"
        counter.n = 0
        resp = client.open(req.url_path(token), method=req.method, headers=req.all_headers(),
                           data=req.body_bytes(token))
        out[name] = {"roundtrips": counter.n, "status": resp.status_code}
    r.close()
    return out


def summary(counts: dict[str, dict[str, int]]) -> int:
    """The most round trips of an operation held to 2 (audited ones and ban.create, allowed
    more by :func:`allowed`, are left out: ``over`` reports any that exceed their allowance)."""
    from shared.registry import load

    registry = load()
    return max((v["roundtrips"] for k, v in counts.items()
                if k not in EXCLUDED and allowed(registry[k]) == 2), default=0)


def over(counts: dict[str, dict[str, int]]) -> dict[str, int]:
    """Operations costing more round trips than :func:`allowed` (none expected)."""
    from shared.registry import load

    registry = load()
    return {k: v["roundtrips"] for k, v in counts.items()
            if k not in EXCLUDED and v["roundtrips"] > allowed(registry[k])}
