"""The (server)² module (clients/lua/SSMGlobal.ssm, clients/lua/README.md) in two stand-in game
servers.

Each game server is ``clients/lua/test/acserver.lua`` under lua5.1 + LuaSocket (AC-Lua and the
core's loader and chat dispatch, written from the core's behaviour clients/lua/README.md
describes), with the module installed as the README says and loaded by an admin's
``!loadModule SSMGlobal``. Both talk to a real relay process on the test Redis; a mail worker
delivers mail notices; the checks read the backend over HTTP.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shared import keys
from tests.conftest import Workers, wait_for
from tests.lua_harness import (
    DISC_BADNICK,
    DISC_MBAN,
    FA_SCORE,
    LUA_DIR,
    PLUGIN_BLOCK,
    UNREACHABLE,
    GameServer,
    RelayProcess,
)

ALICE_PW, BOB_PW, CAROL_PW = "alice-Secret-91", "bob-Secret-72", "carol-Secret-53"
GRACE = 2


class Stack:
    def __init__(self, lua: str, redis_url: str, qurl: str, tmp: Path, api: Any,
                 client: Any) -> None:
        self.lua, self.tmp, self.api, self.client = lua, tmp, api, client
        self.relay = RelayProcess(redis_url, tmp).start()
        env = {"REDIS_QUEUE_URL": qurl} if qurl != redis_url else {}
        self.workers = Workers(redis_url, tmp, **env)
        self.workers.start("--queue", "mail", "--simple", "--quiet")
        self.games: list[GameServer] = []
        resp = client.put("/v1/boards/flags", json={"order": "desc", "operator": "incr"},
                          headers=api.admin)
        assert resp.status_code == 201, resp.json

    def game(self, name: str, load: bool = True, core: str | None = None,
             **over: Any) -> GameServer:
        server_id, headers = self.api.server(name)
        settings = {"host": "127.0.0.1", "port": self.relay.port, "server_id": server_id,
                    "server_key": self.api.token(headers), "public_host": "127.0.0.1",
                    "public_port": 28763, "login_grace": GRACE, "flags_board": "flags"}
        settings.update(over)
        settings = {k: v for k, v in settings.items() if v is not None}
        game = GameServer(self.lua, self.tmp / name.replace(" ", "_"), name, settings, core)
        game.server_id, game.headers = server_id, headers  # type: ignore[attr-defined]
        self.games.append(game)
        if core == "plain":
            game.wait_connected()
        elif load:
            game.load_module()
            game.wait_connected()
        return game

    def close(self) -> None:
        for game in self.games:
            game.close()
        self.workers.stop()
        self.relay.stop()


@pytest.fixture
def stack(lua: str, redis_server: Any, r: Any, queue_url: str, tmp_path: Path, api: Any,
          client: Any) -> Any:
    s = Stack(lua, redis_server.url, queue_url, tmp_path, api, client)
    yield s
    s.close()


def player(client: Any, name: str) -> dict[str, Any]:
    resp = client.get(f"/v1/players/{name}")
    assert resp.status_code == 200, resp.json
    return resp.json


def register(game: GameServer, cn: int, name: str, password: str) -> None:
    game.connect(cn, name)
    mark = game.mark()
    assert game.say(cn, f"!register {password}") == PLUGIN_BLOCK
    game.wait_seen(cn, "Registered", since=mark)
    game.wait_seen(cn, f"Logged in as {name}.", since=mark)


# --- the stories ---------------------------------------------------------------------------
def test_players_across_two_servers(stack, client, api):
    a, b = stack.game("Server A"), stack.game("Server B")

    # alice registers on A: an account, a session, online there
    register(a, 0, "alice", ALICE_PW)
    assert (player(client, "alice")["online"], player(client, "alice")["server"]) == \
        (True, a.server_id)
    wait_for(lambda: "alice" in client.get(f"/v1/status/{a.server_id}").json.get("players", []),
             what="alice in A's heartbeat")

    # bob on B mails her: she sees the notice on A, then !inbox and !read 1
    register(b, 0, "bob", BOB_PW)
    mark_a, mark_b = a.mark(), b.mark()
    assert b.say(0, "!mail alice rematch tonight? same map") == PLUGIN_BLOCK
    b.wait_seen(0, "Mail sent to alice.", since=mark_b)
    a.wait_seen(0, "New mail from bob: rematch tonight? same map", since=mark_a)
    a.say(0, "!inbox")
    a.wait_seen(0, "1. [new] bob: rematch tonight? same map", since=mark_a)
    a.say(0, "!read 1")
    a.wait_seen(0, "Mail 1 from bob: rematch tonight? same map", since=mark_a)
    assert client.get("/v1/mail/unread", headers=api.login("alice", ALICE_PW)).json == \
        {"unread": 0}

    # !gsay shows on B (and on A) as [global] <name>@<server name>: <text>
    mark_a, mark_b = a.mark(), b.mark()
    a.say(0, "!gsay hello from A")
    b.wait_seen(0, "[global] alice@Server A: hello from A", since=mark_b)
    a.wait_seen(0, "[global] alice@Server A: hello from A", since=mark_a)

    # two flags, then a map change: the board says 2
    a.call("flag", cn=0, action=FA_SCORE)
    a.call("flag", cn=0, action=FA_SCORE)
    a.call("flag", cn=0, action=2)  # a drop counts for nothing
    a.call("mapchange", map="ac_mines", mode=0)
    wait_for(lambda: client.get("/v1/boards/flags/records/alice").status_code == 200,
             what="alice's record")
    assert client.get("/v1/boards/flags/records/alice").json["score"] == 2
    wait_for(lambda: client.get(f"/v1/status/{a.server_id}").json.get("mode") == "tdm",
             what="the heartbeat after the map change")
    assert client.get(f"/v1/status/{a.server_id}").json["map"] == "ac_mines"
    mark_a = a.mark()
    a.say(0, "!rank")
    a.wait_seen(0, "alice is #1 on flags with 2.", since=mark_a)

    # someone takes alice's name on B without logging in: removed after login_grace
    mark_b = b.mark()
    b.connect(1, "alice")
    b.wait_seen(1, "The name alice is registered", since=mark_b)
    assert b.disconnects(1, mark_b) == []
    assert b.wait_disconnect(1, since=mark_b, timeout=GRACE + 10) == DISC_BADNICK

    # a protected clan tag: an impostor is removed at once
    carol = api.player("carol", CAROL_PW)
    resp = client.put("/v1/clans/ACE", json={"name": "Aces"}, headers=carol)
    assert resp.status_code == 201, resp.json
    mark_a = a.mark()
    a.connect(2, "[ACE]mallory")
    assert a.wait_disconnect(2, since=mark_a) == DISC_BADNICK
    assert any("ACE" in t and "protected" in t for t in a.seen(2, mark_a))

    # a global ban removes bob at once, and again when he reconnects
    mark_b = b.mark()
    resp = client.post("/v1/bans", json={"player": "bob", "reason": "wallhack"},
                       headers=api.admin)
    assert resp.status_code == 201, resp.json
    assert b.wait_disconnect(0, since=mark_b, timeout=5) == DISC_MBAN
    assert any("wallhack" in t for t in b.seen(0, mark_b))
    mark_b = b.mark()
    b.connect(0, "bob")
    assert b.wait_disconnect(0, since=mark_b, timeout=5) == DISC_MBAN
    # a server that never saw the push (a fresh cache) finds the ban through ban.check
    c = stack.game("Server C")
    mark_c = c.mark()
    c.connect(0, "bob")
    assert c.wait_disconnect(0, since=mark_c) == DISC_MBAN
    assert any("wallhack" in t for t in c.seen(0, mark_c))

    # a rename is checked like a connect: wearing a protected tag, removed at once
    mark_a = a.mark()
    a.connect(3, "dave")
    a.call("rename", cn=3, name="ACE|dave")
    assert a.wait_disconnect(3, since=mark_a) == DISC_BADNICK

    # passwords never reach an output (clientprint, logline, print, core log, files)
    for game in (a, b, c):
        out = game.outputs()
        for secret in (ALICE_PW, BOB_PW, CAROL_PW):
            assert secret not in out, f"{secret} in an output of {game.name}"
        key = api.token(game.headers)
        assert key not in out
    assert not any(e.get("lua_error") for g in (a, b, c) for e in g.events)


def test_relay_killed_and_restarted(stack, client):
    a, b = stack.game("Server A"), stack.game("Server B")
    register(a, 0, "alice", ALICE_PW)
    register(b, 0, "bob", BOB_PW)
    stack.relay.kill()
    a.wait(lambda: not a.call("module").get("connected"), "the module to see the relay gone")
    # every command answers at once, and the hooks still work
    a.connect(4, "guest")
    for cn, text in ((0, "!top"), (0, "!inbox"), (0, "!gsay anyone?"), (0, "!mail bob hi"),
                     (0, "!read 1"), (0, "!rank"), (0, "!password old-one new-one"),
                     (4, "!login whatever"), (4, "!register whatever1"), (4, "!inbox"),
                     (4, "!gsay hi"), (4, "!logout"), (0, "!mail")):
        mark = a.mark()
        assert a.say(cn, text) == PLUGIN_BLOCK
        assert a.seen(cn, mark) == [UNREACHABLE], (text, a.seen(cn, mark))
    mark = a.mark()
    a.say(4, "!help")  # needs no backend
    assert "!register <password>" in "\n".join(a.seen(4, mark))
    a.call("flag", cn=0, action=FA_SCORE)
    a.call("mapend")  # the record is queued in the library
    a.connect(3, "dave")
    a.call("leave", cn=3)
    stack.relay.start()
    a.wait_connected(timeout=20)
    b.wait_connected(timeout=20)
    wait_for(lambda: client.get("/v1/boards/flags/records/alice").status_code == 200,
             what="the flag queued while the relay was down")
    assert client.get("/v1/boards/flags/records/alice").json["score"] == 1
    mark_a, mark_b = a.mark(), b.mark()
    a.say(0, "!gsay back again")
    b.wait_seen(0, "[global] alice@Server A: back again", since=mark_b)
    a.say(0, "!top")
    a.wait_seen(0, "1. alice 1", since=mark_a)
    assert player(client, "alice")["server"] == a.server_id


def test_a_refused_token_fails_that_command_alone(stack, client, api):
    a = stack.game("Server A")
    register(a, 0, "alice", ALICE_PW)
    register(a, 1, "bob", BOB_PW)
    # alice's password changed elsewhere: the module's session for her is revoked
    resp = client.put("/v1/players/alice/password", json={"old": ALICE_PW, "new": "new-pass-44"},
                      headers=api.login("alice", ALICE_PW))
    assert resp.status_code == 200, resp.json
    mark = a.mark()
    a.say(0, "!inbox")
    refused = a.wait(lambda: [t for t in a.seen(0, mark) if t.startswith("Cannot read your mail")],
                     "alice's inbox refused")
    assert "new-pass-44" not in refused[0] and ALICE_PW not in refused[0]
    a.say(1, "!inbox")  # bob's token still works, on the same connection
    a.wait_seen(1, "Your inbox is empty.", since=mark)
    assert a.call("module")["connected"]


def test_logout_ends_the_session_and_leaving_ends_presence(stack, client):
    a = stack.game("Server A")
    register(a, 0, "alice", ALICE_PW)
    mark = a.mark()
    a.say(0, "!logout")
    a.wait_seen(0, "Logged out.", since=mark)
    wait_for(lambda: not player(client, "alice")["online"], what="alice offline")
    # still wearing her registered name, she has login_grace to log in again
    a.say(0, f"!login {ALICE_PW}")
    a.wait_seen(0, "Logged in as alice.", since=mark)
    a.call("leave", cn=0)
    wait_for(lambda: not player(client, "alice")["online"], what="alice offline after leaving")
    assert a.disconnects(0, mark) == []


def test_commands_need_a_login_and_gsay_is_limited(stack):
    # a long login_grace: "bob" on A below wears a registered name for the whole test
    a, b = stack.game("Server A", login_grace=60), stack.game("Server B")
    a.connect(0, "guest")
    mark = a.mark()
    a.say(0, "!gsay hi")
    a.wait_seen(0, "Only logged-in players may use !gsay", since=mark)
    a.say(0, "!inbox")
    a.wait_seen(0, "Log in first", since=mark)
    a.say(0, "!help")
    a.wait_seen(0, "!register <password>", since=mark)
    register(a, 1, "alice", ALICE_PW)
    register(b, 0, "bob", BOB_PW)
    mark_b = b.mark()
    for i in range(6):
        a.say(1, f"!gsay line {i}")
    a.wait_seen(1, "At most 5 !gsay a minute", since=mark)
    b.wait_seen(0, "[global] alice@Server A: line 4", since=mark_b)
    assert not [t for t in b.seen(0, mark_b) if "line 5" in t], b.seen(0, mark_b)
    # a wrong password, a taken name
    mark = a.mark()
    a.connect(2, "bob")
    a.say(2, "!login wrong-password")
    a.wait_seen(2, "Login failed", since=mark)
    a.say(2, "!register another-pass")
    a.wait_seen(2, "already registered", since=mark)
    assert a.disconnects(2, mark) == []
    # the core never saw those lines: nothing logged, nothing shown to others
    assert not [t for t in a.logs() if "wrong-password" in t or "another-pass" in t], a.logs()
    assert not [t for t in a.seen(0, mark) if "wrong-password" in t], a.seen(0, mark)


def test_missing_setting_leaves_the_module_inert(stack):
    a = stack.game("Server A", load=False, server_key=None)
    a.load_module()
    missing = [t for t in a.logs() if "server_key" in t]
    assert len(missing) == 1 and "inert" in missing[0], a.logs()
    assert not any(e.get("lua_error") for e in a.events)
    a.connect(0, "alice")
    mark = a.mark()
    assert a.say(0, "!help") == PLUGIN_BLOCK
    assert any("Not a command" in t for t in a.seen(0, mark))  # the core answers: not ours
    assert a.call("module") == {"loaded": False}


def test_unload_removes_the_module(stack, client):
    a = stack.game("Server A")
    register(a, 0, "alice", ALICE_PW)
    a.connect(14, "admin", "127.0.0.1", admin=True)
    mark = a.mark()
    a.say(14, "!loadModule SSMGlobal unload")
    a.wait_seen(14, "unloaded successfully", since=mark)
    assert a.call("module") == {"loaded": False}
    mark = a.mark()
    a.say(0, "!help")
    assert any("Not a command" in t for t in a.seen(0, mark))
    wait_for(lambda: not player(client, "alice")["online"], what="alice left with the module")
    assert not re.search(r"LUA ERROR", "\n".join(a.logs()))


def test_a_plain_ac_lua_server_runs_the_same_module(stack, client):
    """example_mod.lua: the module on a server without the core (the wrapper has no logic)."""
    plain, b = stack.game("Plain", core="plain"), stack.game("Server B")
    register(plain, 0, "alice", ALICE_PW)
    assert player(client, "alice")["server"] == plain.server_id
    register(b, 0, "bob", BOB_PW)
    mark_b = b.mark()
    assert plain.say(0, "!gsay from a plain server") == PLUGIN_BLOCK
    b.wait_seen(0, "[global] alice@", since=mark_b)
    assert plain.say(0, "just chatting") is None  # not ours: the game shows it
    assert ALICE_PW not in plain.outputs()


def test_the_library_acts_for_a_player_one_command_at_a_time(lua, stack, client, api):
    """``c:call(op, args, cb, {as = token})``: the player's own token reads their mail; another
    player's or a revoked one is refused for that command alone; the connection stays."""
    server_id, headers = api.server("lib")
    alice, bob = api.player("alice", ALICE_PW), api.player("bob", BOB_PW)
    revoked = api.login("alice", ALICE_PW)
    assert client.delete("/v1/sessions/current", headers=revoked).status_code == 204
    resp = client.post("/v1/mail", json={"to": "alice", "subject": "hi", "body": "x"},
                       headers=bob)
    assert resp.status_code == 201, resp.json
    config = {"port": stack.relay.port, "server_id": server_id, "key": api.token(headers),
              "mail_id": resp.json["id"], "alice": api.token(alice), "bob": api.token(bob),
              "revoked": api.token(revoked)}
    got = subprocess.run([lua, str(LUA_DIR / "test" / "as_live.lua"), json.dumps(config)],
                         capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stderr
    data = json.loads(next(line[5:] for line in got.stdout.splitlines()
                           if line.startswith("data ")))
    assert data["own"] == {"ok": True, "code": None, "from": "bob"}
    assert data["other"]["ok"] is False and data["other"]["code"] == "not_found"
    assert data["revoked"] == {"ok": False, "code": "unauthenticated", "from": None}
    assert data["server"]["ok"] is True and data["own_again"]["ok"] is True
    assert (data["connected"], data["disconnects"]) == (True, 0)


def test_public_0_still_heartbeats_unlisted(stack, client, r):
    a = stack.game("Hidden", public=0)
    register(a, 0, "alice", ALICE_PW)  # a login needs a live server: the heartbeat went out
    # online, on a server player.get does not name (a private server is hidden there too)
    assert (player(client, "alice")["online"], player(client, "alice")["server"]) == (True, None)
    assert r.hget(keys.player("alice"), "server") == a.server_id
    assert client.get(f"/v1/status/{a.server_id}").status_code == 404  # not listed
    assert a.server_id not in [s["id"] for s in client.get("/v1/status").json["servers"]]
