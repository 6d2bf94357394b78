"""Helpers for tests that talk to a relay over real sockets (not a test module: no tests here).

``Client`` is a line client (CRLF lines, JSON replies, pushes kept aside); ``greeted`` opens one
and sets its mode; ``InProcessRelays`` runs relays in this process, each on its own event loop
in a thread and a free port, for a fixture to start and stop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import threading
from typing import Any

from relay.server import Relay


class Client:
    """A line client: send lines, read CRLF lines, JSON replies, pushes. ``seen`` keeps every
    byte received, so a test can search all of it."""

    def __init__(self, port: int, timeout: float = 5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.seen = b""
        self.pushes: list[dict[str, Any]] = []

    def send(self, line: str | bytes) -> None:
        self.sock.sendall((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.buf += data
            self.seen += data
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line + b"\r\n"

    def reply(self) -> dict[str, Any]:
        """The next non-push JSON line (pushes are kept in self.pushes)."""
        while True:
            obj = json.loads(self.line())
            if obj["state"] != "PUSH":
                return obj
            self.pushes.append(obj)

    def cmd(self, cmd: str, args: Any = None, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"cmd": cmd, **extra}
        if args is not None:
            body["args"] = args
        self.send(json.dumps(body))
        return self.reply()

    def close(self) -> None:
        self.sock.close()


def greeted(port: int, mode: str = "CLIENT") -> Client:
    c = Client(port)
    assert c.line() == b'{"state": "OK", "msg": "CONNECTED serversquaredGlobal"}\r\n'
    c.send(f"MODE {mode}")
    assert c.line() == f'{{"state": "OK", "msg": "Mode: {mode}"}}\r\n'.encode()
    return c


def authed(port: int, server_id: str, key: str) -> Client:
    """A SERVER-mode connection authenticated as ``server_id``."""
    c = greeted(port, "SERVER")
    got = c.cmd("AUTH", f"{server_id} {key}")
    assert got["state"] == "OK" and got["data"]["id"] == server_id, got
    return c


class InProcessRelays:
    """Relays run in this process; ``start`` returns one with its TCP port as ``.port``."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.running: list[tuple[asyncio.AbstractEventLoop, Relay, threading.Thread]] = []

    def start(self, redis_client: Any = None, **over: Any) -> Relay:
        """A relay with the config's settings and ``over``; ``redis_client`` its data client
        (default: its own)."""
        base: dict[str, Any] = dict(relay_max_per_ip=0, relay_idle_timeout=0)
        base.update(over)
        relay = Relay(dataclasses.replace(self.config, **base), redis_client)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        relay.port = asyncio.run_coroutine_threadsafe(  # type: ignore[attr-defined]
            relay.start("127.0.0.1", 0), loop).result(5)
        self.running.append((loop, relay, thread))
        return relay

    def stop_all(self) -> None:
        for loop, relay, thread in self.running:
            asyncio.run_coroutine_threadsafe(relay.stop(grace=0.2), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
        self.running.clear()
