"""Scenario 5: a fleet of simulated game servers over HTTP keep-alive, loopback only.

Each simulated server (one asyncio task, one keep-alive connection) heartbeats every 5 s with
the in-game names of its players, and between heartbeats, about once a second, does one of:
a registered player joins (presence.join with the player's session token) or leaves, a record
is submitted for a player online on it, a message to another server or the fleet channel, mail
sent for one of its players, an inbox poll, a leaderboard or server-list read. Every player
belongs to one server, so the simulation never races itself: any non-2xx is an error to explain.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import defaultdict
from typing import Any

from bench.http_load import Conn, conn_for, percentile
from bench.world import World, bearer, heartbeat_body
from shared import auth

HEARTBEAT_S = 5.0


class Fleet:
    def __init__(self, world: World, n_servers: int, players_per_server: int, seed: int = 5):
        self.w, self.rng = world, random.Random(seed)
        self.n, self.per = n_servers, players_per_server
        self.servers: list[tuple[str, str]] = []
        self.players: list[list[str]] = []
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.errors: list[tuple[str, int, str]] = []

    def setup(self) -> None:
        """Servers, players with sessions, boards and a channel, made in-process."""
        w, p = self.w, "f"
        for i in range(self.n):
            self.servers.append(w.new_server(f"fleet {i}"))
            names = [f"f{i}x{j}" for j in range(self.per)]
            for name in names:
                w.tokens[name] = w.new_player(name)
            self.players.append(names)
        for board, operator in ((f"{p}.kills", "incr"), (f"{p}.best", "best")):
            w.call("board.create", auth.ADMIN_CALLER, board=board, order="desc",
                   operator=operator)
        for i in range(0, self.n, 4):  # every fourth server in the fleet channel
            w.call("channel.join", auth.Caller("server", self.servers[i][0]),
                   id=self.servers[i][0], channel="fleetchan")

    async def call(self, conn: Conn, op: str, method: str, path: str, key: str,
                   body: Any = None) -> Any:
        headers = bearer(key)
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        t0 = time.perf_counter()
        try:
            status, raw = await conn.request(method, path, headers, data)
        except (OSError, asyncio.IncompleteReadError) as err:
            self.errors.append((op, 0, repr(err)))
            return None
        self.lat[op].append(time.perf_counter() - t0)
        if not 200 <= status < 300:
            self.errors.append((op, status, raw[:200].decode(errors="replace")))
            return None
        return json.loads(raw) if raw else {}

    async def server(self, i: int, base_url: str, deadline: float) -> None:
        rng = random.Random(self.rng.random())
        sid, key = self.servers[i]
        names, online, guests = self.players[i], [], [f"guest{i}_{k}" for k in range(3)]
        conn, cursor = conn_for(base_url), "0"
        await asyncio.sleep(rng.random() * HEARTBEAT_S)
        next_beat = time.monotonic()
        while time.monotonic() < deadline:
            if time.monotonic() >= next_beat:
                await self.call(conn, "status.update", "PUT", f"/v1/servers/{sid}/status", key,
                                heartbeat_body(f"fleet {i}", online + guests))
                next_beat += HEARTBEAT_S
            await asyncio.sleep(rng.uniform(0.5, 1.5))
            roll = rng.random()
            offline = [n for n in names if n not in online]
            if roll < 0.2 and offline:
                name = rng.choice(offline)
                if await self.call(conn, "presence.join", "POST", f"/v1/servers/{sid}/players",
                                   key, {"token": self.w.tokens[name]}) is not None:
                    online.append(name)
            elif roll < 0.3 and online:
                name = rng.choice(online)
                online.remove(name)
                await self.call(conn, "presence.leave", "DELETE",
                                f"/v1/servers/{sid}/players/{name}", key)
            elif roll < 0.55 and online:
                board = rng.choice(("f.kills", "f.best"))
                await self.call(conn, "record.submit", "POST", f"/v1/boards/{board}/records",
                                key, {"player": rng.choice(online), "score": rng.randint(1, 50),
                                      "meta": {"map": "ac_desert"}})
            elif roll < 0.65:
                to = "#fleetchan" if rng.random() < 0.3 else rng.choice(self.servers)[0]
                await self.call(conn, "message.send", "POST", "/v1/messages", key,
                                {"to": to, "body": f"hello from fleet {i}"})
            elif roll < 0.72 and online:
                to = rng.choice(rng.choice(self.players))
                await self.call(conn, "mail.send", "POST", "/v1/mail", key,
                                {"to": to, "from": rng.choice(online), "subject": "gg",
                                 "body": "good game"})
            elif roll < 0.87:
                got = await self.call(conn, "message.read", "GET",
                                      f"/v1/messages?cursor={cursor}&wait=0", key)
                if got:
                    cursor = got["cursor"]
            elif roll < 0.94:
                await self.call(conn, "record.top", "GET", "/v1/boards/f.kills/records?limit=10",
                                key)
            else:
                await self.call(conn, "status.list", "GET", "/v1/status", key)
        conn.close()

    async def run(self, base_url: str, duration: float) -> None:
        deadline = time.monotonic() + duration
        await asyncio.gather(*(self.server(i, base_url, deadline) for i in range(self.n)))

    def report(self, duration: float) -> dict[str, Any]:
        ops = {op: {"count": len(v), "p50_ms": round(percentile(v, 50) * 1000, 2),
                    "p99_ms": round(percentile(v, 99) * 1000, 2)}
               for op, v in sorted(self.lat.items())}
        total = sum(len(v) for v in self.lat.values())
        return {"fleet_errors": len(self.errors), "fleet_requests": total,
                "fleet_rps": round(total / duration, 1), "fleet_servers": self.n,
                "fleet_seconds": duration, "fleet_ops": ops,
                "fleet_error_samples": [list(e) for e in self.errors[:10]]}


def run(world: World, base_url: str, n_servers: int = 200, duration: float = 60.0,
        players_per_server: int = 6) -> dict[str, Any]:
    fleet = Fleet(world, n_servers, players_per_server)
    fleet.setup()
    asyncio.run(fleet.run(base_url, duration))
    for sid, _ in fleet.servers:  # later scenarios measure against the bench world only
        world.call("server.delete", auth.ADMIN_CALLER, id=sid)
    return fleet.report(duration)
