"""Scenario 1: requests/s and p50/p99 of every operation under gunicorn, beside GET /readyz.

GET /readyz (one Redis PING, no logic) is the ceiling of a one-round-trip endpoint on this
stack. It is measured between the operations (before the first, then every ``every`` ops, and
after the last) and each operation's ratio is its requests/s over the mean of the two /readyz
runs around it, so a slow drift of the shared machine cancels out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench import http_load
from bench.world import KDF_BOUND, Req, World, requests_for
from shared import auth, keys
from shared.errors import NotFound
from shared.registry import Operation

POOL_MARGIN = 1.5  # distinct requests for ops that consume their resource, times expected count
KDF_POOL_MAX = 300  # password changes hash at the configured cost: a few dozen per second
KDF_CONNECTIONS = 4  # more only queue behind the hash thread pool (and taint the next run)
KDF_MIN_SECONDS = 2


def run(base_url: str, world: World, registry: dict[str, Operation], duration: float,
        every: int, connections: int, tool: str,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    ops = sorted(registry.values(), key=lambda o: o.name)
    ready = Req("GET", "/readyz")
    ceilings: list[float] = []
    per_op: dict[str, dict[str, Any]] = {}
    readyz_runs: list[dict[str, Any]] = []

    def measure_ceiling() -> None:
        res = http_load.run(base_url, [ready], duration, connections, tool)
        ceilings.append(res.rps)
        readyz_runs.append(res.as_dict())
        log(f"  /readyz                   {res.rps:8.0f} req/s  p50 {res.p50_ms:6.1f} ms  "
            f"p99 {res.p99_ms:6.1f} ms")

    http_load.run(base_url, [ready], 1, connections, tool)  # warm up
    measure_ceiling()
    for i, op in enumerate(ops):
        if i and i % every == 0:
            measure_ceiling()
        world.refresh()
        pool = int(ceilings[-1] * max(1, round(duration)) * POOL_MARGIN) + 50
        kdf = op.name in KDF_BOUND
        before = _servers(world) if op.name in ("server.create", "server.delete") else None
        hooks = _hooks(world) if op.name.startswith("webhook.") else None
        reqs = requests_for(world, op, min(pool, KDF_POOL_MAX) if kdf else pool)
        if kdf:
            res = http_load.run(base_url, reqs, max(duration, KDF_MIN_SECONDS), KDF_CONNECTIONS,
                                tool)
            time.sleep(0.5)  # let hashes still queued finish before the next measurement
        else:
            res = http_load.run(base_url, reqs, duration, connections, tool)
        if before is not None:
            _delete_new_servers(world, before)
        if hooks is not None:
            _delete_new_hooks(world, hooks)
        per_op[op.name] = {**res.as_dict(), "ceiling_index": len(ceilings) - 1,
                           "read": op.reads, "kdf": kdf}
        log(f"  {op.name:25} {res.rps:8.0f} req/s  p50 {res.p50_ms:6.1f} ms  "
            f"p99 {res.p99_ms:6.1f} ms  non-2xx {res.non2xx}")
    measure_ceiling()
    figures: dict[str, Any] = {}
    for name, d in per_op.items():
        i = d.pop("ceiling_index")
        ceiling = (ceilings[i] + ceilings[i + 1]) / 2
        d["ratio"] = round(d["rps"] / ceiling, 3) if ceiling else 0.0
        figures[f"http_{name.replace('.', '_')}_ratio"] = d["ratio"]
    reads = [d["ratio"] for d in per_op.values() if d["read"] and not d["kdf"]]
    writes = [d["ratio"] for d in per_op.values() if not d["read"] and not d["kdf"]]
    figures["http_read_ratio_min"] = min(reads, default=0.0)
    figures["http_write_ratio_min"] = min(writes, default=0.0)
    figures["http_readyz_rps"] = round(sum(ceilings) / len(ceilings), 1)
    figures["http_non2xx"] = sum(d["non2xx"] + d["socket_errors"] for d in per_op.values())
    figures["http_tool"] = http_load.tool_name(tool)
    return {"figures": figures, "ops": per_op, "readyz": readyz_runs}


def _servers(world: World) -> set[str]:
    return set(world.r.smembers(keys.servers_all()))


def _delete_new_servers(world: World, before: set[str]) -> None:
    """server.create made thousands of servers (server.delete's pool leaves those it did not
    reach): delete them so later broadcasts and server.list stay fleet-sized."""
    for sid in _servers(world) - before:
        try:
            world.call("server.delete", auth.ADMIN_CALLER, id=sid)
        except NotFound:  # deleted by the run (the directory is a superset of the servers)
            pass


def _hooks(world: World) -> set[str]:
    return set(world.r.smembers(keys.webhook_ids()))


def _delete_new_hooks(world: World, before: set[str]) -> None:
    """The webhooks a run made (its pool, or webhook.create's thousands): gone, so the next
    operation's world holds a few webhooks, as a deployment does."""
    for hook_id in _hooks(world) - before:
        try:
            world.call("webhook.delete", auth.ADMIN_CALLER, id=hook_id)
        except NotFound:
            pass
