"""Relay benchmark (issue 3 "must show"): memory per connection and command round trips/s.

``python -m bench.relay_bench [-n 10000] [--conns 100] [--seconds 3]`` starts an embedded Redis
(unless REDIS_URL is set), one relay process (``python -m relay``) and the bare asyncio line
server of bench/bare_server.py, then for each server:

- opens N concurrent connections and waits until every one is greeted; KiB per connection is
  the server process's RSS growth (``/proc/<pid>`` via psutil) divided by N. Only the server
  process is measured, so the client's own sockets do not count;
- with those N connections still open, runs ``--conns`` client connections that each send a
  command and wait for its answer, over and over, for ``--seconds``: round trips per second.
  Relay: ``HW`` (protocol + session, no Redis) and ``status.list`` (an operation through the
  thread pool and Redis); bare server: one line in, one line out.

Functions return dicts of figures; :func:`main` prints a table. The client raises its own
open-file soft limit to the hard limit (each connection is one descriptor on each side).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from relay.server import raise_nofile_limit
from stack.embedded import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
HW = b'{"cmd": "HW"}\r\n'
STATUS_LIST = b'{"cmd": "status.list"}\r\n'


class _Line(asyncio.Protocol):
    """Counts received lines; ``wait(n)`` resolves once n lines in all have arrived."""

    def __init__(self) -> None:
        self.lines = 0
        self.want = 0
        self.waiter: asyncio.Future | None = None
        self.transport: Any = None
        self.lost = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.lines += data.count(b"\n")
        if self.waiter is not None and self.lines >= self.want and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("server closed the connection"))

    async def wait(self, n: int) -> None:
        if self.lines >= n:
            return
        self.want = n
        self.waiter = asyncio.get_running_loop().create_future()
        await self.waiter


async def _open(host: str, port: int, n: int, batch: int = 500) -> list[_Line]:
    loop = asyncio.get_running_loop()
    conns: list[_Line] = []
    for start in range(0, n, batch):
        made = await asyncio.gather(*(loop.create_connection(_Line, host, port)
                                      for _ in range(min(batch, n - start))))
        conns += [proto for _, proto in made]
    await asyncio.gather(*(c.wait(1) for c in conns))  # every one greeted
    return conns


async def _round_trips(host: str, port: int, conns: int, seconds: float,
                       command: bytes) -> float:
    """Round trips/s: each client sends ``command``, waits for its answer, repeats."""
    clients = await _open(host, port, conns)
    for c in clients:
        c.transport.write(b"MODE CLIENT\r\n")
    await asyncio.gather(*(c.wait(2) for c in clients))
    done = 0
    deadline = time.perf_counter() + seconds

    async def one(c: _Line) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            c.transport.write(command)
            await c.wait(c.lines + 1)
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one(c) for c in clients))
    elapsed = time.perf_counter() - t0
    for c in clients:
        c.transport.close()
    return done / elapsed


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


async def measure_async(host: str, port: int, pid: int, n: int = 10000, conns: int = 100,
                        seconds: float = 3.0, commands: dict[str, bytes] | None = None
                        ) -> dict[str, Any]:
    """Figures for the line server at host:port whose process is ``pid``."""
    commands = commands or {"cmd_per_s": HW}
    warm = await _open(host, port, 10)
    for c in warm:
        c.transport.close()
    await asyncio.sleep(0.5)
    before = rss(pid)
    t0 = time.perf_counter()
    held = await _open(host, port, n)
    greet_s = time.perf_counter() - t0
    await asyncio.sleep(0.5)
    after = rss(pid)
    out: dict[str, Any] = {"connections": n, "greeted": sum(1 for c in held if c.lines >= 1),
                           "rss_before_mib": round(before / 2**20, 1),
                           "rss_after_mib": round(after / 2**20, 1),
                           "kib_per_conn": round((after - before) / 1024 / n, 2),
                           "greet_all_s": round(greet_s, 2)}
    for key, command in commands.items():
        out[key] = round(await _round_trips(host, port, conns, seconds, command))
    out["dropped"] = sum(1 for c in held if c.lost)
    for c in held:
        c.transport.close()
    await asyncio.sleep(0.2)
    return out


def measure(host: str, port: int, pid: int, **kw: Any) -> dict[str, Any]:
    """Blocking wrapper of :func:`measure_async` (raises this process's open-file limit)."""
    raise_nofile_limit()
    return asyncio.run(measure_async(host, port, pid, **kw))


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def start_relay(redis_url: str, port: int | None = None) -> tuple[subprocess.Popen, int]:
    """A ``python -m relay`` process without connection limits: (process, port)."""
    port = port or free_port()
    env = dict(os.environ, REDIS_URL=redis_url, RELAY_PORT=str(port), RELAY_HOST="127.0.0.1",
               RELAY_MAX_CLIENTS="0", RELAY_MAX_PER_IP="0", RELAY_IDLE_TIMEOUT="0")
    proc = subprocess.Popen([sys.executable, "-m", "relay"], cwd=ROOT, env=env,
                            stderr=subprocess.DEVNULL)
    _wait_port(port, proc)
    return proc, port


def start_bare(port: int | None = None) -> tuple[subprocess.Popen, int]:
    port = port or free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.bare_server", str(port)], cwd=ROOT)
    _wait_port(port, proc)
    return proc, port


def run(n: int = 10000, conns: int = 100, seconds: float = 3.0,
        redis_url: str | None = None) -> dict[str, Any]:
    """Start Redis (unless given), the relay and the bare server; measure both."""
    redis = None
    if redis_url is None:
        redis = EmbeddedRedis(tempfile.mkdtemp(prefix="relay-bench-"), appendonly=False).start()
        redis_url = redis.url
    procs: list[subprocess.Popen] = []
    try:
        relay, relay_port = start_relay(redis_url)
        procs.append(relay)
        relay_figs = measure("127.0.0.1", relay_port, relay.pid, n=n, conns=conns,
                             seconds=seconds,
                             commands={"cmd_per_s": HW, "op_per_s": STATUS_LIST})
        bare, bare_port = start_bare()
        procs.append(bare)
        bare_figs = measure("127.0.0.1", bare_port, bare.pid, n=n, conns=conns, seconds=seconds)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        if redis is not None:
            redis.stop()
    return {"relay": relay_figs, "bare": bare_figs,
            "kib_per_conn_ratio": round(relay_figs["kib_per_conn"]
                                        / max(bare_figs["kib_per_conn"], 0.01), 2),
            "cmd_ratio": round(relay_figs["cmd_per_s"] / max(bare_figs["cmd_per_s"], 1), 2)}


def table(figs: dict[str, Any]) -> str:
    relay, bare = figs["relay"], figs["bare"]
    rows = [("connections held (all greeted)", "connections", "{:,}"),
            ("seconds to open and greet all", "greet_all_s", "{}"),
            ("server RSS before / MiB", "rss_before_mib", "{}"),
            ("server RSS with all held / MiB", "rss_after_mib", "{}"),
            ("KiB per connection", "kib_per_conn", "{}"),
            ("HW round trips/s (held conns open)", "cmd_per_s", "{:,}"),
            ("status.list round trips/s (Redis)", "op_per_s", "{:,}")]
    out = [f"{'':38}{'relay':>14}{'bare asyncio':>16}"]
    for label, key, fmt in rows:
        cells = [fmt.format(d[key]) if key in d else "-" for d in (relay, bare)]
        out.append(f"{label:38}{cells[0]:>14}{cells[1]:>16}")
    out.append(f"relay / bare: KiB per connection x{figs['kib_per_conn_ratio']}, "
               f"HW round trips x{figs['cmd_ratio']} (target: <= 16 KiB per connection)")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10000, help="connections to hold")
    parser.add_argument("--conns", type=int, default=100, help="round-trip clients")
    parser.add_argument("--seconds", type=float, default=3.0, help="round-trip duration")
    opts = parser.parse_args(argv)
    raise_nofile_limit()
    figs = run(opts.n, opts.conns, opts.seconds, os.environ.get("REDIS_URL") or None)
    print(table(figs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
