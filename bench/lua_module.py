"""The game never waits on SSMGlobal.ssm: ``python -m bench.lua_module [--seconds 8]``.

Starts the stack (embedded Redis, web, relay, worker), then runs the module in the stand-in
AssaultCube server (clients/lua/test/acserver.lua under lua5.1) three times, with the relay:

- **up**: the real relay;
- **down**: a port where nothing listens (every connect refused);
- **black-holed**: a local listener that accepts connections and never reads nor answers.

Each run drives the same game for ``--seconds``: players connect, register, log in, chat every
command, score flags, rename, leave; maps end and change; the module's timer (the client's poll,
heartbeats, login grace) runs every 10 ms. The harness times every hook and every timer call in
wall time and in CPU time (``os.clock``: what the Lua itself spent, without the scheduler's
pauses of a busy machine nor the harness's own reporting). Printed: the slowest hook (and
which), the slowest timer call, their counts and means, against the 50 ms budget
clients/lua/README.md sets (goal: a few ms).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.stack import ADMIN_TOKEN, Stack
from stack.embedded import free_port
from tests.lua_harness import FA_SCORE, GameServer, lua_exe

BUDGET_MS = 50.0


def http(base: str, method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


class BlackHole:
    """Accepts every connection and never reads from it nor writes to it."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


def drive(game: GameServer, seconds: float, round_no: list[int]) -> None:
    """One game's worth of events, repeated for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r = round_no[0] = round_no[0] + 1
        names = [f"p{r}x{i}" for i in range(8)]
        for cn, name in enumerate(names):
            game.connect(cn, name)
        for cn, name in enumerate(names):
            game.say(cn, f"!register pw-{name}-secret")
        for cn, name in enumerate(names):
            game.say(cn, f"!login pw-{name}-secret")
            for text in ("!help", "!top", "!rank", "!inbox", "!read 1", "!gsay hello",
                         f"!mail {names[(cn + 1) % 8]} hi there", "!delmail 1",
                         "just chatting"):
                game.say(cn, text)
            game.call("flag", cn=cn, action=FA_SCORE)
        game.call("mapend")
        game.call("mapchange", map="ac_mines" if r % 2 else "ac_desert", mode=5)
        game.call("rename", cn=0, name=f"r{r}")
        for cn in range(8):
            game.call("leave", cn=cn)
        time.sleep(0.2)  # the timers alone for a while (polls, heartbeats, answers)


def run(lua: str, base: str, relay_port: int, label: str, port: int, seconds: float,
        workdir: Path) -> dict[str, Any]:
    server = http(base, "POST", "/v1/servers", {"name": f"bench {label}"})
    settings = {"host": "127.0.0.1", "port": port, "server_id": server["id"],
                "server_key": server["key"], "public_host": "127.0.0.1", "login_grace": 60,
                "flags_board": "flags"}
    game = GameServer(lua, workdir / label, f"bench {label}", settings)
    try:
        game.load_module()
        if port == relay_port:
            game.wait_connected()
        game.stats(reset=True)
        drive(game, seconds, [0])
        stats = game.stats()
    finally:
        game.close()
    hooks = stats["hooks"]
    slowest = max(hooks, key=lambda k: hooks[k]["max_ms"])
    calls = sum(h["n"] for h in hooks.values())
    total = sum(h["total_ms"] for h in hooks.values())
    t = stats["timers"]
    return {"state": label, "hook": slowest, "hook_max_ms": hooks[slowest]["max_ms"],
            "hook_cpu_ms": max(h.get("max_cpu_ms", 0) for h in hooks.values()),
            "timer_cpu_ms": stats["timers"].get("max_cpu_ms", 0),
            "hooks": calls, "hook_mean_ms": total / max(calls, 1),
            "timer_max_ms": t["max_ms"], "timers": t["n"],
            "timer_mean_ms": t["total_ms"] / max(t["n"], 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    lua = lua_exe()
    if lua is None:
        print("lua5.1 with LuaSocket is required: apt-get install lua5.1 lua-socket")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="ssm-bench-lua-"))
    results = []
    with Stack(only=("web", "relay", "worker")) as stack:
        http(stack.base_url, "PUT", "/v1/boards/flags", {"order": "desc", "operator": "incr"})
        hole = BlackHole()
        try:
            for label, port in (("up", stack.relay_port), ("down", free_port()),
                                ("black-holed", hole.port)):
                results.append(run(lua, stack.base_url, stack.relay_port, label, port,
                                   args.seconds, workdir))
        finally:
            hole.close()
    print(f"\nSSMGlobal.ssm in the stand-in AC server, {args.seconds:g} s of play per state "
          f"(budget {BUDGET_MS:g} ms per hook or timer call)\n")
    print(f"{'relay':<12} {'slowest hook':<18} {'max ms':>7} {'cpu ms':>7} {'mean ms':>8} "
          f"{'hooks':>6} {'timer max ms':>13} {'cpu ms':>7} {'mean ms':>8} {'timers':>7} "
          f"{'max/budget':>10}")
    worst = 0.0
    for r in results:
        top = max(r["hook_max_ms"], r["timer_max_ms"])
        worst = max(worst, top)
        print(f"{r['state']:<12} {r['hook']:<18} {r['hook_max_ms']:>7.2f} "
              f"{r['hook_cpu_ms']:>7.2f} {r['hook_mean_ms']:>8.3f} {r['hooks']:>6} "
              f"{r['timer_max_ms']:>13.2f} {r['timer_cpu_ms']:>7.2f} {r['timer_mean_ms']:>8.3f} "
              f"{r['timers']:>7} {top / BUDGET_MS:>10.2f}")
    print(f"\nworst call: {worst:.2f} ms = {worst / BUDGET_MS:.2f} of the budget "
          f"({'within' if worst <= BUDGET_MS else 'OVER'})")
    return 0 if worst <= BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
