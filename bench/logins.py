"""Scenario 6: password hashing. Logins/s over HTTP at the configured scrypt cost, and the raw
KDF rate of one core at that cost and cheaper ones, so the cost/speed choice is visible.

The logins are the ones a game server makes for its players (with its key, so the per-address
lockout does not apply), cycling over 24 players, with 8 connections.

A login verifies the password against its stored hash (one scrypt at the cost stored in the
hash); the login player is registered at the configured cost (SSM_SCRYPT_LOG2_N, default 14:
16 MiB and ~40 ms per hash on one core here).
"""

from __future__ import annotations

import time
from typing import Any

from bench import http_load
from bench.world import World, requests_for
from shared.auth import hash_password
from shared.registry import Operation


def kdf_rate(log2_n: int, seconds: float = 0.5) -> float:
    """Hashes per second on one thread at cost 2**log2_n."""
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or n < 2:
        hash_password("benchpass1", log2_n)
        n += 1
    return n / (time.perf_counter() - start)


def run(base_url: str, world: World, registry: dict[str, Operation], duration: float,
        connections: int, tool: str) -> dict[str, Any]:
    cost = world.config.scrypt_log2_n
    reqs = requests_for(world, registry["session.login"])
    res = http_load.run(base_url, reqs, max(duration, 2), connections, tool)
    kdf = {f"2^{c}": round(kdf_rate(c), 1) for c in sorted({cost, max(1, cost - 2),
                                                            max(1, cost - 4)}, reverse=True)}
    return {"logins_per_s": round(res.rps, 1), "login_p50_ms": round(res.p50_ms, 1),
            "login_p99_ms": round(res.p99_ms, 1), "login_non2xx": res.non2xx,
            "login_cost_log2_n": cost, "kdf_hashes_per_s_one_core": kdf}
