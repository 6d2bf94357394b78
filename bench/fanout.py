"""Scenario 3b: broadcast fan-out to relay-connected game servers.

``n`` registered servers each hold one relay connection in SERVER mode (``MODE SERVER``, then
``AUTH <id> <key>``). One ``POST /v1/messages {"to": "*"}`` from another server; each connection
notes when its PUSH line arrives. Latency = arrival - just before the POST, all in one event
loop. Repeated ``rounds`` times; p99 over every push of every round. A push that does not
arrive within the timeout counts as missing (and the p99 becomes infinite if more than 1% miss).
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from typing import Any

from bench.http_load import conn_for, percentile
from bench.world import World, bearer
from shared import auth

CONNECT_CONCURRENCY = 100


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class RelayClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def line(self, timeout: float = 10.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.reader.readline(), timeout)
        if not raw:
            raise ConnectionError("relay closed the connection")
        return json.loads(raw)

    async def send(self, text: str) -> None:
        self.writer.write(text.encode() + b"\r\n")
        await self.writer.drain()

    async def command(self, cmd: str, args: str) -> dict[str, Any]:
        await self.send(json.dumps({"cmd": cmd, "args": args}))
        while True:
            reply = await self.line()
            if reply.get("state") != "PUSH":
                return reply


async def open_server_conn(port: int, server_id: str, key: str) -> RelayClient:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    c = RelayClient(reader, writer)
    await c.line()  # greeting
    await c.send("MODE SERVER")
    mode = await c.line()
    if mode.get("state") != "OK":
        raise RuntimeError(f"MODE SERVER refused: {mode}")
    reply = await c.command("AUTH", f"{server_id} {key}")
    if reply.get("state") != "OK":
        raise RuntimeError(f"AUTH refused: {reply}")
    return c


async def _fanout(base_url: str, relay_port: int, servers: list[tuple[str, str]],
                  sender_key: str, rounds: int, timeout: float) -> dict[str, Any]:
    sem = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def connect(sid: str, key: str) -> RelayClient:
        async with sem:
            return await open_server_conn(relay_port, sid, key)

    t0 = time.perf_counter()
    clients = await asyncio.gather(*(connect(s, k) for s, k in servers))
    connect_s = time.perf_counter() - t0
    http = conn_for(base_url)
    latencies: list[float] = []
    missing = 0
    per_round = []
    for rnd in range(rounds):
        marker = f"fanout {rnd} {time.time()}"

        async def wait_push(c: RelayClient, marker: str = marker) -> float | None:
            end = time.perf_counter() + timeout
            while True:
                try:
                    msg = await c.line(max(0.01, end - time.perf_counter()))
                except TimeoutError:
                    return None
                if msg.get("state") == "PUSH" and (msg.get("data") or {}).get("body") == marker:
                    return time.perf_counter()

        waiters = [asyncio.ensure_future(wait_push(c)) for c in clients]
        await asyncio.sleep(0.05)
        sent = time.perf_counter()
        status, body = await http.request(
            "POST", "/v1/messages", {**bearer(sender_key), "Content-Type": "application/json"},
            json.dumps({"to": "*", "body": marker}).encode())
        if status != 202:
            raise RuntimeError(f"broadcast answered {status}: {body[:200]!r}")
        post_ms = (time.perf_counter() - sent) * 1000
        arrivals = await asyncio.gather(*waiters)
        got = [(a - sent) * 1000 for a in arrivals if a is not None]
        missing += len(arrivals) - len(got)
        latencies += got
        per_round.append({"post_ms": round(post_ms, 1), "first_ms": round(min(got, default=0), 1),
                          "p50_ms": round(percentile(got, 50), 1),
                          "p99_ms": round(percentile(got, 99), 1),
                          "max_ms": round(max(got, default=0), 1),
                          "missing": len(arrivals) - len(got)})
        await asyncio.sleep(0.2)
    http.close()
    for c in clients:
        c.writer.close()
    total = len(servers) * rounds
    p99 = percentile(latencies, 99) if missing <= total // 100 else float("inf")
    return {"fanout_p99_ms": round(p99, 1), "fanout_p50_ms": round(percentile(latencies, 50), 1),
            "fanout_connections": len(servers), "fanout_missing": missing,
            "fanout_connect_s": round(connect_s, 2), "fanout_rounds": per_round}


def run(world: World, base_url: str, relay_port: int, n: int = 1000, rounds: int = 3,
        timeout: float = 10.0) -> dict[str, Any]:
    raise_nofile()
    servers = [world.new_server(f"fanout {i}") for i in range(n)]
    sender = world.new_server("fanout sender")
    try:
        return asyncio.run(_fanout(base_url, relay_port, servers, sender[1], rounds, timeout))
    finally:  # later broadcasts (fleet, HTTP table) reach the bench world only
        for sid, _ in [*servers, sender]:
            world.call("server.delete", auth.ADMIN_CALLER, id=sid)
