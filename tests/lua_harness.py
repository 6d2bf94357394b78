"""Drive SSMGlobal.ssm in stand-in AssaultCube servers (clients/lua/test/acserver.lua).

``GameServer`` lays out a game server's folder (``lua/scripts/SSModules/`` with the module and the
library, ``lua/config/ssmglobal.cfg``), starts ``lua5.1 acserver.lua`` in it, and talks to it over
a loopback control connection: game events in (players connect, chat, flags, map changes), what
the game shows out (``clientprint``, ``logline``, ``print``, disconnects). ``RelayProcess`` runs a
relay that can be killed and started again on the same port. Used by tests/test_lua_module.py and
bench/lua_module.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from stack.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
LUA_DIR = ROOT / "clients" / "lua"
ACSERVER = LUA_DIR / "test" / "acserver.lua"
PLUGIN_BLOCK = 4
DISC_NONE, DISC_MBAN, DISC_BADNICK = 0, 4, 14
FA_SCORE = 5
UNREACHABLE = "the global backend is unreachable, try again soon"


def lua_exe() -> str | None:
    exe = shutil.which("lua5.1")
    if exe is None:
        return None
    probe = subprocess.run([exe, "-e", 'require("socket")'], capture_output=True, timeout=10)
    return exe if probe.returncode == 0 else None


class RelayProcess:
    """``python -m relay`` on a fixed port, so it can be killed and started again there."""

    def __init__(self, redis_url: str, logdir: Path, **env: str) -> None:
        self.port = free_port()
        self.env = dict(os.environ, REDIS_URL=redis_url, RELAY_PORT=str(self.port),
                        RELAY_HOST="127.0.0.1", RELAY_MAX_PER_IP="0", LEGACY_UDP_PORT="0",
                        **env)
        self.log = logdir / f"relay-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> RelayProcess:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "relay"], cwd=ROOT, env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(100).startswith(b"{"):
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("relay exited:\n" + self.log.read_text())
            time.sleep(0.05)
        raise RuntimeError("relay did not start:\n" + self.log.read_text())

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class GameServer:
    """One stand-in AssaultCube server with the module's files installed as the README says."""

    def __init__(self, lua: str, root: Path, name: str, settings: dict[str, Any],
                 core: str | None = None) -> None:
        self.root, self.name = root, name
        modules = root / "lua" / "scripts" / "SSModules"
        modules.mkdir(parents=True, exist_ok=True)
        (root / "lua" / "config").mkdir(parents=True, exist_ok=True)
        for f in ("SSMGlobal.ssm", "ssmglobal.lua"):
            shutil.copy(LUA_DIR / f, modules / f)
        if core == "plain":  # a plain AC-Lua server: the wrapper script, run at start
            shutil.copy(LUA_DIR / "example_mod.lua", root / "lua" / "scripts" / "example_mod.lua")
        self.write_settings(settings)
        self.events: list[dict[str, Any]] = []
        self.replies: dict[int, dict[str, Any]] = {}
        self.cond = threading.Condition()
        self.seq = 0
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(20)
        self.stderr = open(root / "harness.err", "wb")  # noqa: SIM115
        args = [lua, str(ACSERVER), str(listener.getsockname()[1]), name]
        if core:
            args.append(core)
        self.proc = subprocess.Popen(args, cwd=root, stdout=self.stderr, stderr=self.stderr)
        try:
            self.sock, _ = listener.accept()
        finally:
            listener.close()
        self.sock.settimeout(None)
        self.file = self.sock.makefile("rb")
        threading.Thread(target=self._read, daemon=True).start()
        self.wait(lambda: any(e.get("ev") == "ready" for e in self.events), "harness ready")

    def write_settings(self, settings: dict[str, Any]) -> None:
        lines = [f"{k}={v}" for k, v in settings.items()]
        (self.root / "lua" / "config" / "ssmglobal.cfg").write_text("\n".join(lines) + "\n")

    def _read(self) -> None:
        for raw in self.file:
            msg = json.loads(raw)
            with self.cond:
                if "ev" in msg:
                    self.events.append(msg)
                else:
                    self.replies[msg.get("id", -1)] = msg
                self.cond.notify_all()
        with self.cond:
            self.events.append({"ev": "exit"})
            self.cond.notify_all()

    def wait(self, check: Any, what: str, timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = check()
                if got:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: timed out waiting for {what}; "
                                         f"last events: {self.events[-15:]}")
                self.cond.wait(min(left, 0.2))

    def call(self, op: str, **kw: Any) -> Any:
        self.seq += 1
        rid = self.seq
        self.sock.sendall((json.dumps({"id": rid, "op": op, **kw}) + "\n").encode())
        reply = self.wait(lambda: self.replies.pop(rid, None), f"the answer to {op}")
        assert reply["ok"], reply
        return reply.get("ret")

    # --- the game ------------------------------------------------------------------------------
    def connect(self, cn: int, name: str, ip: str = "", admin: bool = False) -> None:
        self.call("connect", cn=cn, name=name, ip=ip or f"198.51.100.{cn + 10}", admin=admin)

    def say(self, cn: int, text: str) -> Any:
        return self.call("say", cn=cn, text=text)

    def load_module(self, admin_cn: int = 15) -> None:
        self.connect(admin_cn, "admin", "127.0.0.1", admin=True)
        mark = self.mark()
        self.say(admin_cn, "!loadModule SSMGlobal")
        self.wait_seen(admin_cn, "loaded successfully", since=mark)
        self.call("leave", cn=admin_cn)

    def wait_connected(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not self.call("module").get("connected"):
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: the module did not connect: {self.logs()}")
            time.sleep(0.02)

    def mark(self) -> int:
        with self.cond:
            return len(self.events)

    def seen(self, cn: int, since: int = 0) -> list[str]:
        """What player ``cn`` was shown (to them, or to everyone), from event ``since`` on."""
        with self.cond:
            return [e["text"] for e in self.events[since:] if e.get("ev") == "clientprint"
                    and (e["to"] == cn or (e["to"] == -1 and e.get("exclude") != cn))]

    def wait_seen(self, cn: int, text: str, since: int = 0, timeout: float = 15) -> str:
        return self.wait(lambda: next((t for t in self.seen(cn, since) if text in t), None),
                         f"{text!r} shown to cn {cn}", timeout)

    def disconnects(self, cn: int, since: int = 0) -> list[int]:
        with self.cond:
            return [e["reason"] for e in self.events[since:]
                    if e.get("ev") == "disconnect" and e["cn"] == cn]

    def wait_disconnect(self, cn: int, since: int = 0, timeout: float = 15) -> int:
        return self.wait(lambda: next(iter(self.disconnects(cn, since)), None),
                         f"cn {cn} disconnected", timeout)

    def logs(self) -> list[str]:
        with self.cond:
            return [e["text"] for e in self.events if e.get("ev") in ("log", "print")]

    def outputs(self) -> str:
        """Every output of this server: events, and every file in its folder but the settings."""
        with self.cond:
            parts = [json.dumps(e) for e in self.events]
        for path in self.root.rglob("*"):
            if path.is_file() and path.name != "ssmglobal.cfg":
                parts.append(path.read_bytes().decode(errors="replace"))
        return "\n".join(parts)

    def stats(self, reset: bool = False) -> dict[str, Any]:
        return self.call("stats", reset=reset)

    def close(self) -> None:
        try:
            self.sock.sendall(b'{"id": 0, "op": "quit"}\n')
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.sock.close()
        self.stderr.close()
