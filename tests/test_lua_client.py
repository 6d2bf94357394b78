"""The mod's Lua client (clients/lua/ssmglobal.lua, clients/lua/README.md) under lua5.1 + LuaSocket.

The Lua scripts print ``ok <name>`` / ``fail <name>: why``, ``metric <name> <value>`` and
``data <json>`` lines; these tests run them as subprocesses against a real relay process
(``python -m relay`` on the test Redis) and check what they did over HTTP (the Flask app on the
same Redis). The figures the issue asks for are printed at the end of each test.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stack.embedded import free_port
from tests.lua_harness import LUA_DIR, ROOT, RelayProcess

TEST_DIR = LUA_DIR / "test"


# --- the stack (tests/lua_harness.py: RelayProcess) --------------------------------------------
@pytest.fixture
def relays(redis_server: Any, r: Any, tmp_path: Path) -> Any:
    """A factory of relay processes on the test Redis (``r`` flushes it first)."""
    started: list[RelayProcess] = []

    def make(**env: str) -> RelayProcess:
        relay = RelayProcess(redis_server.url, tmp_path, **env).start()
        started.append(relay)
        return relay

    yield make
    for relay in started:
        relay.stop()


def _close(*socks: socket.socket) -> None:
    """Shut down first: a bare close() leaves the connection open while another thread is
    blocked reading it."""
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


class Proxy:
    """A TCP forwarder between the Lua client and the relay that can lose the relay's answers:
    ``hold()`` makes it throw away what the relay sends, ``cut()`` closes every connection."""

    def __init__(self, upstream: int) -> None:
        self.upstream, self.holding = upstream, False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream), timeout=2)
            except OSError:
                down.close()
                continue
            self.socks += [down, up]
            threading.Thread(target=self._pump, args=(down, up, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, answers: bool) -> None:
        try:
            while data := src.recv(65536):
                if not (answers and self.holding):
                    dst.sendall(data)
        except OSError:
            pass
        _close(src, dst)

    def hold(self) -> None:
        self.holding = True

    def cut(self) -> None:
        _close(*self.socks)
        self.socks, self.holding = [], False

    def close(self) -> None:
        self.listener.close()
        self.cut()


@dataclass
class World:
    server_id: str
    key: str
    headers: dict[str, str]
    peer_id: str
    peer_headers: dict[str, str]
    alice: dict[str, str]
    bob: dict[str, str]
    board: str = "lua.test"

    def config(self, port: int, **extra: Any) -> str:
        return json.dumps({"port": port, "server_id": self.server_id, "key": self.key,
                           "peer_id": self.peer_id, "board": self.board,
                           "alice_token": self.alice["Authorization"].split(" ", 1)[1],
                           **extra})


@pytest.fixture
def world(api: Any, client: Any) -> World:
    server_id, headers = api.server("lua")
    peer_id, peer_headers = api.server("peer")
    alice, bob = api.player("alice"), api.player("bob")
    resp = client.put("/v1/boards/lua.test", json={"order": "desc", "operator": "best"},
                      headers=api.admin)
    assert resp.status_code == 201, resp.json
    return World(server_id, api.token(headers), headers, peer_id, peer_headers, alice, bob)


# --- running Lua --------------------------------------------------------------------------------
@dataclass
class Run:
    lines: list[str] = field(default_factory=list)
    returncode: int | None = None
    stderr: str = ""

    @property
    def oks(self) -> set[str]:
        return {line[3:] for line in self.lines if line.startswith("ok ")}

    @property
    def fails(self) -> list[str]:
        return [line for line in self.lines if line.startswith("fail ")]

    @property
    def metrics(self) -> dict[str, float]:
        out = {}
        for line in self.lines:
            if line.startswith("metric "):
                _, name, value = line.split()
                out[name] = float(value)
        return out

    @property
    def data(self) -> dict[str, Any]:
        found = [json.loads(line[5:]) for line in self.lines if line.startswith("data ")]
        assert found, self.lines
        return found[-1]

    def check(self, *names: str) -> None:
        assert not self.fails and self.returncode == 0, "\n".join(self.lines) + self.stderr
        assert set(names) <= self.oks, f"missing {set(names) - self.oks}"


def run_lua(lua: str, script: str, *args: str, timeout: float = 60,
            on_sync: dict[str, Any] | None = None) -> Run:
    """Run a Lua test script; at each ``sync <tag>`` line call ``on_sync[tag]()`` and answer."""
    proc = subprocess.Popen([lua, str(TEST_DIR / script), *args], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    run = Run()
    try:
        assert proc.stdout is not None and proc.stdin is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            run.lines.append(line)
            if line.startswith("sync "):
                (on_sync or {})[line[5:]]()
                proc.stdin.write("go\n")
                proc.stdin.flush()
        run.returncode = proc.wait()
        run.stderr = proc.stderr.read() if proc.stderr else ""
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert run.returncode != -signal.SIGKILL, f"lua timed out after {timeout} s: {run.lines}"
    return run


def report(capsys: Any, title: str, figures: dict[str, Any]) -> None:
    with capsys.disabled():
        print(f"\n[lua client] {title}: " + ", ".join(f"{k} = {v}" for k, v in figures.items()))


def poll_figures(run: Run, phase: str) -> str:
    """``longest wall ms / longest CPU ms (polls over 2 ms wall / polls)`` for one phase."""
    m = run.metrics
    return (f"{m[f'poll_max_ms_{phase}']:.2f} ms wall / {m[f'poll_max_cpu_ms_{phase}']:.2f} ms CPU "
            f"({int(m[f'polls_over_2ms_{phase}'])}/{int(m[f'polls_{phase}'])} over 2 ms)")


def inbox_bodies(client: Any, headers: dict[str, str]) -> list[str]:
    resp = client.get("/v1/messages?limit=1000", headers=headers)
    assert resp.status_code == 200, resp.json
    return [m["body"] for m in resp.json["messages"]]


# --- tests ----------------------------------------------------------------------------------------
def test_unit_tests_in_lua(lua):
    run = run_lua(lua, "unit.lua")
    run.check("json round trip of the shapes the relay sends",
              "replies are matched by id, with a push arriving while calls are in flight",
              "writes made while down wait in order; the oldest is dropped when full",
              "live pushes ahead of the replay do not move the resume point past a gap",
              "ban and unban pushes feed the cache; check_ban answers from it while down")
    assert len(run.oks) >= 30


def test_every_wrapper_against_the_relay(lua, relays, world, client, capsys):
    relay = relays()
    run = run_lua(lua, "live.lua", "wrappers", world.config(relay.port))
    run.check("heartbeat", "join", "submit", "send_message", "send_mail", "call_write_and_read",
              "call_error", "push_while_call_in_flight", "check_ban", "check_name", "leave",
              "connected_stays")
    # what the wrappers did, seen over HTTP
    assert inbox_bodies(client, world.peer_headers) == ["hello peer"]
    mail = client.get("/v1/mail", headers=world.bob).json["mail"]
    assert [(m["id"], m["from"], m["subject"]) for m in mail] == \
        [(run.data["mail_id"], "alice", "subj")]
    top = client.get("/v1/boards/lua.test/records").json["records"]
    assert [(t["player"], t["score"], t["meta"]) for t in top] == [("alice", 42, {"kills": 7})]
    assert client.get("/v1/players/alice").json["online"] is False  # joined, then left
    settings = client.get(f"/v1/servers/{world.server_id}/settings", headers=world.headers)
    assert settings.json["settings"] == {"motd": {"text": "hi"}}
    report(capsys, "backend up", {"longest poll": poll_figures(run, "up"),
                                  "push/answer order seen": run.data["order"]})


def test_backend_restart_loses_no_push_and_applies_writes_once(lua, relays, world, client,
                                                                capsys):
    relay = relays()
    proxy = Proxy(relay.port)

    def message(body: str) -> None:
        resp = client.post("/v1/messages", json={"to": world.server_id, "body": body},
                           headers=world.peer_headers)
        assert resp.status_code == 202, resp.json

    def killed() -> None:
        # x1..x3 went out after hold(): the relay applies them but their answers are lost.
        # Wait until they are applied; only the idempotency key keeps the client's resend
        # from applying them twice.
        deadline = time.monotonic() + 10
        while sorted(inbox_bodies(client, world.peer_headers)) != ["x1", "x2", "x3"]:
            assert time.monotonic() < deadline, inbox_bodies(client, world.peer_headers)
            time.sleep(0.02)
        relay.kill()
        proxy.cut()
        for i in range(2, 7):  # sent while no relay runs: they wait in the inbox
            message(f"m{i}")

    try:
        run = run_lua(lua, "live.lua", "restart", world.config(proxy.port), timeout=90,
                      on_sync={"connected": lambda: message("m1"), "hold": proxy.hold,
                               "kill": killed, "restart": relay.start})
    finally:
        proxy.close()
    run.check("outbox_holds_writes_while_down", "writes_answered")
    bodies = run.data["bodies"]
    assert sorted(bodies) == [f"m{i}" for i in range(1, 7)], bodies
    assert run.metrics["pushes_lost"] == 0 and run.metrics["pushes_duplicated"] == 0
    written = inbox_bodies(client, world.peer_headers)
    expected = [f"x{i}" for i in range(1, 4)] + [f"w{i}" for i in range(1, 6)]
    duplicated = sum(max(0, written.count(b) - 1) for b in expected)
    lost = sum(1 for b in expected if b not in written)
    assert (duplicated, lost) == (0, 0), written
    assert sorted(written) == sorted(expected), written
    assert written.index("w1") < written.index("w2") < written.index("w5"), "outbox in order"
    report(capsys, "backend killed and restarted", {
        "longest poll (up)": poll_figures(run, "up"),
        "longest poll (down)": poll_figures(run, "down"),
        "pushes lost": int(run.metrics["pushes_lost"]),
        "pushes duplicated": int(run.metrics["pushes_duplicated"]),
        "writes duplicated": duplicated, "writes lost": lost})


def test_poll_never_blocks_on_a_dead_or_black_holed_backend(lua, capsys):
    silent = socket.socket()  # accepts at the TCP level (backlog), never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    full = socket.socket()  # its accept queue is full: a connect never completes
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    filler = socket.create_connection(full.getsockname(), timeout=2)
    down = free_port()  # nothing listens
    targets = [{"name": "blackholed", "port": silent.getsockname()[1]},
               {"name": "unanswered_syn", "port": full.getsockname()[1]},
               {"name": "down", "port": down}]
    try:
        run = run_lua(lua, "live.lua", "blackhole",
                      json.dumps({"server_id": "x", "key": "y", "targets": targets,
                                  "seconds": 3}))
    finally:
        for s in (filler, silent, full):
            s.close()
    run.check(*(f"{what}_{t['name']}" for t in targets
                for what in ("never_connected", "kept_trying", "write_still_queued")))
    longest = {t["name"]: run.metrics[f"poll_max_ms_{t['name']}"] for t in targets}
    # A poll that blocked would wait for the connect or the greeting: seconds, not the 2 ms
    # budget. The bound leaves a wide margin for a busy machine.
    assert max(longest.values()) < 200, longest
    report(capsys, "backend unreachable", {f"longest poll ({k})": poll_figures(run, k)
                                          for k in longest})


def test_keepalive_keeps_a_quiet_server_connected(lua, relays, world):
    relay = relays(RELAY_IDLE_TIMEOUT="2")
    quiet = run_lua(lua, "live.lua", "idle", world.config(relay.port, keepalive_s=0.5, seconds=5))
    assert quiet.returncode == 0, quiet.lines
    assert quiet.metrics["disconnects"] == 0 and quiet.metrics["keepalives"] >= 5, quiet.metrics
    # without the keepalive the relay's idle timeout drops it
    silent = run_lua(lua, "live.lua", "idle", world.config(relay.port, keepalive_s=0, seconds=5))
    assert silent.returncode == 0, silent.lines
    assert silent.metrics["disconnects"] >= 1, silent.metrics


def test_the_clients_reads_are_the_registrys_reads(lua):
    """An operation the client takes for a write is queued while disconnected and sent again
    after a reconnect; one it takes for a read fails at once: the lists must match."""
    from shared.registry import load

    got = subprocess.run([lua, "-e", "package.path = 'clients/lua/?.lua;' .. package.path; "
                          "local ops = {} for op in pairs(require('ssmglobal').READS) do "
                          "ops[#ops + 1] = op end table.sort(ops) print(table.concat(ops, ' '))"],
                         cwd=ROOT, capture_output=True, text=True, timeout=30, check=True)
    assert set(got.stdout.split()) == {name for name, op in load().items() if op.reads}
