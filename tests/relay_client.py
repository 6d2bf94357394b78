"""Helpers for tests that talk to a relay over real sockets (not a test module: no tests here).

``Client`` is a line client (CRLF lines, JSON replies, pushes kept aside); ``greeted`` opens one
and sets its mode; ``authed`` is a SERVER-mode one authenticated with a key, ``server_creds``
makes the key; ``InProcessRelays`` runs relays in this process, each on its own event loop
in a thread and a free port, for a fixture to start and stop (``start_relay`` in
tests/conftest.py); ``spawn`` runs ``python -m relay`` as a process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from relay.server import Relay
from stack.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent


class Client:
    """A line client: send lines, read CRLF lines, JSON replies, pushes. ``seen`` keeps every
    byte received, so a test can search all of it; ``rcvbuf`` sets the socket's receive buffer
    (before connecting)."""

    def __init__(self, port: int, rcvbuf: int | None = None, timeout: float = 5.0):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        self.sock.settimeout(timeout)
        self.buf = b""
        self.seen = b""
        self.pushes: list[dict[str, Any]] = []

    def send(self, line: str | bytes) -> None:
        self.sock.sendall((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data
        self.seen += data

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line + b"\r\n"

    def upto(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(marker)
        return head + marker

    def reply(self) -> dict[str, Any]:
        """The next non-push JSON line (pushes are kept in self.pushes)."""
        while True:
            obj = json.loads(self.line())
            if obj["state"] != "PUSH":
                return obj
            self.pushes.append(obj)

    def push(self) -> dict[str, Any]:
        if self.pushes:
            return self.pushes.pop(0)
        obj = json.loads(self.line())
        assert obj["state"] == "PUSH", obj
        return obj

    def cmd(self, cmd: str, args: Any = None, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"cmd": cmd, **extra}
        if args is not None:
            body["args"] = args
        self.send(json.dumps(body))
        return self.reply()

    def is_closed(self, timeout: float = 3.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


def greeted(port: int, mode: str = "CLIENT", **kw: Any) -> Client:
    c = Client(port, **kw)
    assert c.line() == b'{"state": "OK", "msg": "CONNECTED serversquaredGlobal"}\r\n'
    c.send(f"MODE {mode}")
    if mode == "HUMAN":
        assert c.upto(b"> ").endswith(b"Backend.\r\n> ")
    else:
        assert c.line() == f'{{"state": "OK", "msg": "Mode: {mode}"}}\r\n'.encode()
    return c


def authed(port: int, server_id: str, key: str) -> Client:
    """A SERVER-mode connection authenticated as ``server_id``."""
    c = greeted(port, "SERVER")
    got = c.cmd("AUTH", f"{server_id} {key}")
    assert got["state"] == "OK" and got["data"]["id"] == server_id, got
    return c


def server_creds(api: Any, name: str = "srv") -> tuple[str, str, dict[str, str]]:
    """A new game server through ``api`` (tests/conftest.py's Api): (id, key, auth headers)."""
    server_id, headers = api.server(name)
    return server_id, api.token(headers), headers


class InProcessRelays:
    """Relays run in this process; ``start`` returns one with its TCP port as ``.port``."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.running: list[tuple[asyncio.AbstractEventLoop, Relay, threading.Thread]] = []

    def start(self, redis_client: Any = None, config: Any = None, **over: Any) -> Relay:
        """A relay with ``config``'s settings (default: the one given at creation) and
        ``over``; ``redis_client`` its data client (default: its own)."""
        base: dict[str, Any] = dict(relay_max_per_ip=0, relay_idle_timeout=0)
        base.update(over)
        relay = Relay(dataclasses.replace(config or self.config, **base), redis_client)
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


def spawn(redis_url: str, **env: str) -> tuple[subprocess.Popen, int]:
    """``python -m relay`` on a free port (stderr piped, as text): (process, port) once it
    accepts connections."""
    port = free_port()
    full = dict(os.environ, REDIS_URL=redis_url, RELAY_PORT=str(port), RELAY_HOST="127.0.0.1",
                RELAY_MAX_PER_IP="0", **env)
    proc = subprocess.Popen([sys.executable, "-m", "relay"], cwd=ROOT, env=full,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(proc.stderr.read() if proc.stderr else "relay did not start")
