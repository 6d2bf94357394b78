"""Relay abuse budgets (issue 18 items 5 and 7): a slot flood and slow readers, in one run.

``python -m bench.relay_flood [--flood 1536] [--max-clients 1500] [--slow 32]`` starts an
embedded Redis (unless REDIS_URL is set) and relay processes (``python -m relay``), then:

1. **Slot flood.** A game server authenticates, then ``--flood`` sockets connect and never send
   ``MODE``, only an empty line every 4 s (the red team's flood), with
   ``RELAY_MAX_CLIENTS=--max-clients``. Meanwhile a second game server tries to connect and
   ``AUTH`` every 0.25 s, and the first one sends ``HW`` now and then. Printed: how many flood
   sockets were refused at once, when the new server got in, how long the held ones lasted,
   and the first server's worst ``HW`` round trip. Run twice in the same invocation: with
   ``RELAY_HANDSHAKE_TIMEOUT`` at its default (10 s) and off (0), the flood's only defence
   then being the idle timeout (300 s by default, longer than the run).
2. **Slow readers.** ``--slow`` server connections (4 per server key) whose inboxes each hold
   1,000 messages of about 2 KB ask ``message.read`` with ``limit`` 1000 ten times and never
   read; then each sends ``RESUME 0`` and never reads. Printed: the most bytes seen waiting in
   the relay for clients (its ``ssm_relay_outbound_bytes`` gauge), the size of the whole answers
   (what the relay used to write at once, one per connection) and the relay's RSS growth, which
   is mostly the answers read from Redis by up to RELAY_THREADS operations at once.

Figures, not asserts: the tests hold the behaviour (tests/test_relay.py).
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from relay.server import raise_nofile_limit
from stack.embedded import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
GREETING = b'{"state": "OK", "msg": "CONNECTED serversquaredGlobal"}\r\n'


def start_relay(redis_url: str, **env: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    full = dict(os.environ, REDIS_URL=redis_url, RELAY_PORT=str(port), RELAY_HOST="127.0.0.1",
                RELAY_METRICS_PORT="0", RELAY_MAX_PER_IP="0")
    full.update(env)
    proc = subprocess.Popen([sys.executable, "-m", "relay"], cwd=ROOT, env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("relay did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _line(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    buf = b""
    while not buf.endswith(b"\n"):
        got = sock.recv(1)
        if not got:
            raise EOFError
        buf += got
    return buf


def server_conn(port: int, server_id: str, key: str) -> socket.socket | None:
    """A SERVER-mode connection authenticated as ``server_id``, or None if refused."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        if _line(s) != GREETING:
            s.close()
            return None
        s.sendall(b"MODE SERVER\r\n")
        _line(s)
        s.sendall(json.dumps({"cmd": "AUTH", "args": f"{server_id} {key}"}).encode() + b"\r\n")
        if json.loads(_line(s))["state"] != "OK":
            s.close()
            return None
        return s
    except (OSError, EOFError, ValueError):
        return None


def make_servers(redis_url: str, n: int) -> list[tuple[str, str]]:
    from shared.auth import ADMIN_CALLER
    from shared.config import Config
    from shared.dispatch import Ctx, run
    from shared.redis_conn import connect_data
    from shared.registry import load

    config = Config.from_env({"REDIS_URL": redis_url})
    r = connect_data(config)
    ctx = Ctx(r, config, ADMIN_CALLER)
    out = []
    for i in range(n):
        made = run(load()["server.create"], ctx, {"name": f"flood{i}"}).body
        out.append((made["id"], made["key"]))
    return out


def fill_inbox(redis_url: str, server_id: str, n: int, size: int) -> None:
    import redis

    from shared import keys
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    pipe = r.pipeline(transaction=False)
    for _ in range(n):
        pipe.xadd(keys.message_ids(), {"e": "message"})
    ids = pipe.execute()
    for i, sid in enumerate(ids):
        pipe.xadd(keys.inbox(server_id), {"e": "message", "d": json.dumps(
            {"from": "x", "to": server_id, "type": "text", "body": f"{i} " + "x" * size,
             "at": 1.0})}, id=sid)
    pipe.execute()


# --- 1. the slot flood ------------------------------------------------------------------------
def slot_flood(redis_url: str, servers: list[tuple[str, str]], flood: int, max_clients: int,
               handshake: int, seconds: float) -> dict[str, Any]:
    proc, port = start_relay(redis_url, RELAY_MAX_CLIENTS=str(max_clients),
                             RELAY_HANDSHAKE_TIMEOUT=str(handshake))
    (a_id, a_key), (b_id, b_key) = servers[0], servers[1]
    try:
        first = server_conn(port, a_id, a_key)
        assert first is not None, "the first server could not connect"
        socks: list[socket.socket] = []
        refused = 0
        start = time.monotonic()
        for _ in range(flood):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if _line(s) == GREETING:
                socks.append(s)
            else:
                refused += 1
                s.close()
        opened = time.monotonic() - start
        alive = {s.fileno(): s for s in socks}
        sel = selectors.DefaultSelector()  # epoll: more than 1,024 descriptors
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        closed_at: list[float] = []
        got_in: float | None = None
        attempts = worst_hw = 0.0
        last_ping = 0.0
        while time.monotonic() - start < seconds:
            now = time.monotonic()
            if now - last_ping >= 4:  # the flood's "activity": an empty line
                last_ping = now
                for s in list(alive.values()):
                    try:
                        s.sendall(b"\r\n")
                    except OSError:
                        pass
                t = time.perf_counter()
                first.sendall(b'{"cmd": "HW"}\r\n')
                _line(first)
                worst_hw = max(worst_hw, time.perf_counter() - t)
            readable = [key.fileobj for key, _ in sel.select(0.05)] if alive else []
            if not alive:
                time.sleep(0.05)
            for s in readable:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data or b"Handshake timeout." in data or b"Idle timeout." in data:
                    closed_at.append(time.monotonic() - start)
                    alive.pop(s.fileno(), None)
                    sel.unregister(s)
                    s.close()
            if got_in is None and now - start >= attempts * 0.25:
                attempts += 1
                second = server_conn(port, b_id, b_key)
                if second is not None:
                    got_in = time.monotonic() - start
                    second.close()
        for s in alive.values():
            s.close()
        first.close()
        return {"handshake": handshake, "held": len(socks), "refused": refused,
                "opened_s": opened, "got_in_s": got_in, "attempts": int(attempts),
                "closed": len(closed_at), "last_closed_s": max(closed_at, default=None),
                "worst_hw_ms": worst_hw * 1000}
    finally:
        stop(proc)


# --- 2. slow readers --------------------------------------------------------------------------
def outbound(metrics_port: int) -> int:
    """The relay's ``ssm_relay_outbound_bytes``: bytes waiting for clients, all connections."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("ssm_relay_outbound_bytes "):
                return int(float(line.split()[1]))
    return -1


def most_outbound(metrics_port: int, seconds: float) -> int:
    """The most bytes seen waiting over ``seconds`` (sampled every 0.1 s)."""
    most, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        most = max(most, outbound(metrics_port))
        time.sleep(0.1)
    return most


def slow_readers(redis_url: str, servers: list[tuple[str, str]], n: int) -> dict[str, Any]:
    metrics_port = free_port()
    proc, port = start_relay(redis_url, RELAY_METRICS_PORT=str(metrics_port))
    try:
        rss = psutil.Process(proc.pid).memory_info
        conns = []
        for i in range(n):
            server_id, key = servers[i // 4]
            s = server_conn(port, server_id, key)
            assert s is not None
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            conns.append(s)
        time.sleep(0.5)
        base = rss().rss
        ask = json.dumps({"cmd": "message.read", "args": {"limit": 1000}}).encode() + b"\r\n"
        for s in conns:
            for _ in range(10):
                s.sendall(ask)
        reads_out = most_outbound(metrics_port, 3)  # nobody reads the answers
        after_reads = rss().rss
        for s in conns:
            s.sendall(b'{"cmd": "RESUME", "args": "0"}\r\n')
        replays_out = most_outbound(metrics_port, 3)
        after_replays = rss().rss
        for s in conns:
            s.close()
        return {"conns": n, "rss_base_mib": base / 2**20,
                "reads_growth_mib": (after_reads - base) / 2**20,
                "replays_growth_mib": (after_replays - base) / 2**20,
                "reads_out_kib": reads_out / 1024, "replays_out_kib": replays_out / 1024}
    finally:
        stop(proc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flood", type=int, default=1536)
    ap.add_argument("--max-clients", type=int, default=1500)
    ap.add_argument("--seconds", type=float, default=16.0)
    ap.add_argument("--slow", type=int, default=32)
    args = ap.parse_args(argv)
    raise_nofile_limit()
    own = None
    url = os.environ.get("REDIS_URL")
    if not url:
        own = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="ssm-flood-")), appendonly=False)
        url = own.start().url
    try:
        servers = make_servers(url, max(2, (args.slow + 3) // 4))
        print(f"slot flood: {args.flood} sockets that never send MODE (an empty line every 4 s),"
              f" RELAY_MAX_CLIENTS={args.max_clients}, RELAY_IDLE_TIMEOUT=300, "
              f"{args.seconds:.0f} s")
        print(f"{'RELAY_HANDSHAKE_TIMEOUT':>24} {'held':>6} {'refused':>8} {'new server in':>14}"
              f" {'flood closed':>13} {'by':>7} {'HW worst':>9}")
        rows = [slot_flood(url, servers, args.flood, args.max_clients, h, args.seconds)
                for h in (10, 0)]
        for row in rows:
            got = f"{row['got_in_s']:.1f} s" if row["got_in_s"] is not None else "never"
            by = f"{row['last_closed_s']:.1f} s" if row["last_closed_s"] is not None else "-"
            print(f"{row['handshake']:>24} {row['held']:>6} {row['refused']:>8} {got:>14} "
                  f"{row['closed']:>13} {by:>7} {row['worst_hw_ms']:>7.1f} ms")
        size = 2000
        for server_id, _ in servers[: (args.slow + 3) // 4]:
            fill_inbox(url, server_id, 1000, size)
        whole = len(json.dumps({"messages": [{"body": "x" * (size + 4)}] * 1000})) / 2**20
        slow = slow_readers(url, servers, args.slow)
        print(f"\nslow readers: {slow['conns']} server connections that never read, 1,000 "
              f"messages of ~2 KB in each inbox (a whole message.read answer: {whole:.1f} MiB, "
              f"over the 1 MiB line cap)")
        print(f"{'':34} {'bytes waiting (most)':>21} {'whole ans.':>10} {'RSS growth':>11}")
        print(f"{'10 x message.read limit 1000 each':34} {slow['reads_out_kib']:>17.0f} KiB "
              f"{whole * slow['conns']:>6.0f} MiB {slow['reads_growth_mib']:>+7.1f} MiB")
        print(f"{'then RESUME 0 each':34} {slow['replays_out_kib']:>17.0f} KiB "
              f"{whole * slow['conns']:>6.0f} MiB {slow['replays_growth_mib']:>+7.1f} MiB")
        print(f"(base RSS {slow['rss_base_mib']:.1f} MiB; RSS growth is mostly the answers "
              f"being read from Redis, up to RELAY_THREADS at once, not what waits)")
        return 0
    finally:
        if own is not None:
            own.stop()


if __name__ == "__main__":
    sys.exit(main())
