"""Scenario 2: Redis round trips per operation, counted exactly.

A round trip is one request/response exchange with Redis. redis-py sends every exchange through
``Connection.send_packed_command`` exactly once (a plain command once; a whole pipeline or
MULTI/EXEC block, packed together, once), so a connection class that counts those calls counts
round trips. The connection handshake (HELLO, CLIENT SETINFO) is not counted; health-check PINGs
are switched off. Lua scripts are loaded before counting (``SCRIPT LOAD`` of every
``shared.redis_conn.Lua`` object), so the figures are the steady state: a cold EVALSHA that
falls back to EVAL costs one more, once per Redis restart.

Each operation runs in-process through the Flask test client, so the bearer-token lookup (the
auth round trip) is included.
"""

from __future__ import annotations

import gc
from typing import Any

import redis

from shared.config import Config
from shared.redis_conn import Lua, connect
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


class Counter:
    def __init__(self) -> None:
        self.n = 0


class CountingConnection(redis.Connection):
    """A redis-py connection that counts round trips in its class-level ``counter``."""

    counter = Counter()

    def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        self._ssm_handshake = True
        try:
            super().connect_check_health(*args, **kwargs)
        finally:
            self._ssm_handshake = False

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not getattr(self, "_ssm_handshake", False):
            type(self).counter.n += 1
        super().send_packed_command(command, check_health)


def counting_client(url: str) -> tuple[Any, Counter]:
    """A client like the app's (decode_responses, retries) whose round trips are counted."""
    counter = Counter()
    cls = type("Counting", (CountingConnection,), {"counter": counter})
    return connect(url, connection_class=cls, health_check_interval=0), counter


def preload_scripts(r: Any) -> int:
    """``SCRIPT LOAD`` every Lua script the loaded modules define; returns how many."""
    scripts = {obj.source for obj in gc.get_objects() if isinstance(obj, Lua)}
    for source in scripts:
        r.script_load(source)
    return len(scripts)


def count(url: str, config: Config, registry: dict[str, Operation], world_factory: Any) -> dict:
    """``{op name: {"roundtrips": n, "status": http status}}`` for every operation."""
    from bench.world import requests_for
    from wsgi import create_app

    r, counter = counting_client(url)
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
