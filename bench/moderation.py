"""``python -m bench.moderation [--quick]``: moderation figures, measured in one run.

Starts its own embedded Redis with the Procfile's web and relay (bench/stack.py), loads
100,000 bans (players, IPv4 addresses and /16-/32 ranges, IPv6 ranges; some expiring) and
10,000 clans straight through the storage scripts, then measures:

- ``ban.check`` (a player and an address) and ``name.check`` (nicks carrying tags of the loaded
  clans, registered names, free names) req/s beside ``GET /readyz``, interleaved in rounds so
  the ratios compare like with like (target: reads >= 0.7x readyz), with ``player.get`` (an
  existing one-round-trip read) as a reference measured the same way;
- the Redis round trips of each (counted as tests/test_roundtrips.py counts them);
- ban push latency: ``POST /v1/bans`` (global) -> the ``ban`` PUSH on each of 1,000
  relay-connected servers (p50/p99 over every push of every round).

Prints one JSON object; ``--quick`` loads a tenth and measures shorter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from typing import Any
from urllib.parse import quote

from bench import http_load
from bench.fanout import open_server_conn, raise_nofile
from bench.http_load import conn_for, percentile
from bench.stack import Stack
from bench.world import Req, World, bearer
from shared import auth, keys
from shared.config import Config
from shared.redis_conn import connect
from shared.registry import load
from shared.storage import bans, clans

CHUNK = 1000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _ban_target(i: int) -> tuple[str | None, Any]:
    kind = i % 5
    if kind == 0:
        return f"bp{i}", None
    if kind == 1:
        return None, bans.network(f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}")
    if kind == 2:
        return None, bans.network(f"172.{16 + (i >> 14) % 16}.{(i >> 6) & 255}.0/24")
    if kind == 3:
        return f"bp{i}", bans.network(f"2001:db8:{i & 0xffff:x}::/48")
    return None, bans.network(f"100.{64 + (i >> 8) % 64}.{i & 255}.0/{random.choice((16, 20))}"
                              if i % 50 == 4 else f"198.{(i >> 8) & 255}.{i & 255}.7")


def load_bans(r: Any, n: int) -> None:
    """``n`` bans through the storage script (no checks, no pushes: fixtures)."""
    now = int(time.time())
    for start in range(0, n, CHUNK):
        pipe = r.pipeline(transaction=False)
        for i in range(start, min(n, start + CHUNK)):
            player, net = _ban_target(i)
            ban = bans.new_ban(f"bench{i:07d}", player, net, "bench", "global", "admin", now,
                               86400 if i % 3 == 0 else None)
            bans.store(r, ban, net, now * 1000, pipeline=pipe)
        pipe.execute()
    r.delete(keys.ban_outbox(), keys.outbox(bans.EVENTS_TAG))  # fixtures: no push, no event


def load_clans(r: Any, n: int) -> None:
    """``n`` clans (tags K0..K<n-1>), each with an owner that is no registered player."""
    now_ms = int(time.time() * 1000)
    for start in range(0, n, CHUNK):
        pipe = r.pipeline(transaction=False)
        for i in range(start, min(n, start + CHUNK)):
            ltag = f"k{i}"
            pipe.evalsha(clans.CREATE.sha, 4, *clans.group(ltag), f"K{i}", "bench clan",
                         f"own{i}", now_ms)
        pipe.execute()


def read_requests(w: World, n_bans: int, n_clans: int) -> dict[str, list[Req]]:
    srv = bearer(w.servers[0][1])
    checks, names = [], []
    for i in range(400):
        player, net = _ban_target(random.randrange(n_bans))
        ip = str(net.network_address) if net is not None else f"203.0.113.{i % 250}"
        who = player or w.players[i % len(w.players)]
        checks.append(Req("GET", f"/v1/bans/check?player={who}&ip={quote(ip)}", srv))
        tag = f"K{random.randrange(n_clans)}"
        nick = random.choice((f"[{tag}]zed", f"{tag}|zed", f"zed|{tag}", f"({tag})zed",
                              w.players[i % len(w.players)], f"free{i}"))
        names.append(Req("GET", f"/v1/names/check?nick={quote(nick)}&player={w.players[0]}",
                         srv))
    profiles = [Req("GET", f"/v1/players/{name}") for name in w.players]
    return {"readyz": [Req("GET", "/readyz")], "ban.check": checks, "name.check": names,
            "player.get": profiles}


def throughput(base_url: str, reqs: dict[str, list[Req]], seconds: float, rounds: int,
               connections: int) -> dict[str, Any]:
    got: dict[str, list[float]] = {k: [] for k in reqs}
    bad: dict[str, int] = dict.fromkeys(reqs, 0)
    for _ in range(rounds):
        for name, pool in reqs.items():
            res = http_load.run(base_url, pool, seconds, connections)
            got[name].append(res.rps)
            bad[name] += res.non2xx + res.socket_errors
    rps = {k: sum(v) / len(v) for k, v in got.items()}
    return {"rps": {k: round(v, 1) for k, v in rps.items()},
            "ratio_to_readyz": {k: round(v / rps["readyz"], 2) for k, v in rps.items()
                                if k != "readyz"},
            "errors": bad, "tool": http_load.tool_name()}


def roundtrips(url: str, config: Config, reqs: dict[str, list[Req]]) -> dict[str, int]:
    from bench.roundtrips import counting_client, preload_scripts
    from wsgi import create_app

    r, counter = counting_client(url)
    client = create_app(config, r).test_client()
    preload_scripts(r)
    out = {}
    for name in ("ban.check", "name.check"):
        worst = 0
        for req in reqs[name][:50]:
            counter.n = 0
            resp = client.open(req.path, method=req.method, headers=req.all_headers())
            assert resp.status_code == 200, resp.data
            worst = max(worst, counter.n)
        out[name] = worst
    r.close()
    return out


async def _push_latency(base_url: str, relay_port: int, servers: list[tuple[str, str]],
                        admin: dict[str, str], rounds: int, timeout: float) -> dict[str, Any]:
    sem = asyncio.Semaphore(100)

    async def connect_one(sid: str, key: str) -> Any:
        async with sem:
            return await open_server_conn(relay_port, sid, key)

    conns = await asyncio.gather(*(connect_one(s, k) for s, k in servers))
    http = conn_for(base_url)
    latencies: list[float] = []
    missing = 0
    for rnd in range(rounds):
        marker = f"bench push {rnd} {time.time()}"

        async def wait_push(c: Any, marker: str = marker) -> float | None:
            end = time.perf_counter() + timeout
            while True:
                try:
                    msg = await c.line(max(0.01, end - time.perf_counter()))
                except TimeoutError:
                    return None
                if msg.get("event") == "ban" and (msg.get("data") or {}).get("reason") == marker:
                    return time.perf_counter()

        waiters = [asyncio.ensure_future(wait_push(c)) for c in conns]
        await asyncio.sleep(0.05)
        sent = time.perf_counter()
        status, body = await http.request(
            "POST", "/v1/bans", {**admin, "Content-Type": "application/json"},
            json.dumps({"ip": f"192.0.2.{rnd}", "reason": marker, "duration": 60}).encode())
        if status != 201:
            raise RuntimeError(f"ban.create answered {status}: {body[:200]!r}")
        arrivals = await asyncio.gather(*waiters)
        got = [(a - sent) * 1000 for a in arrivals if a is not None]
        missing += len(arrivals) - len(got)
        latencies += got
        await asyncio.sleep(0.2)
    http.close()
    for c in conns:
        c.writer.close()
    return {"ban_push_p50_ms": round(percentile(latencies, 50), 1),
            "ban_push_p99_ms": round(percentile(latencies, 99), 1),
            "ban_push_connections": len(servers), "ban_push_missing": missing}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.moderation")
    parser.add_argument("--quick", action="store_true", help="a tenth of the data, shorter")
    opts = parser.parse_args(argv)
    n_bans, n_clans, n_servers = (10_000, 1_000, 200) if opts.quick else (100_000, 10_000, 1000)
    seconds, rounds = (1.0, 2) if opts.quick else (3.0, 3)
    random.seed(7)
    raise_nofile()
    stack = Stack(only=("web", "relay")).start()
    try:
        config = Config.from_env(stack.env)
        r = connect(stack.redis_url)
        registry = load()
        for script in (bans.STORE, clans.CREATE):
            r.script_load(script.source)
        world = World(r, config, registry, prefix="m").build()
        t0 = time.perf_counter()
        load_bans(r, n_bans)
        load_clans(r, n_clans)
        log(f"loaded {n_bans} bans and {n_clans} clans in {time.perf_counter() - t0:.1f} s")
        reqs = read_requests(world, n_bans, n_clans)
        out: dict[str, Any] = {"bans": n_bans, "clans": n_clans,
                               "roundtrips": roundtrips(stack.redis_url, config, reqs)}
        out.update(throughput(stack.base_url, reqs, seconds, rounds, connections=32))
        log(f"throughput: {out['rps']}")
        servers = [world.new_server(f"push {i}") for i in range(n_servers)]
        out.update(asyncio.run(_push_latency(stack.base_url, stack.relay_port, servers,
                                             world.admin, 3, 10.0)))
        for sid, _ in servers:
            world.call("server.delete", auth.ADMIN_CALLER, id=sid)
        print(json.dumps(out, indent=2))
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
