"""A small world of real fixtures for running every operation's documented example: two live
servers, players alice and bob online on the first, a board with both their records, mail,
a message, settings and a channel. Used by the docs test (every example answers as documented)
and the relay contract test (both transports answer the same data)."""

from __future__ import annotations

import dataclasses
from typing import Any

from shared.auth import sha256
from shared.registry import Operation
from shared.storage import sessions, webhooks
from shared.web import apidoc

# the example values a real world replaces (ids and secrets are random)
SERVER, OTHER_SERVER, TOKEN, MAIL = ("k3x9q2w7m1ab", "t5y1u8i2o6pz",
                                     "p.YWxpY2U.EXAMPLE-session-token", "m4t8z1c6v0bn")
BAN = "b7n2q4x8r1zc"
WEBHOOK = "w7h2k9d4x1qe"
SESSION = "3f9a0c1d5e7b2a48"  # session.end: the id of alice's second session
BUILD = "3f786850e387550fdab836ed7e6dc881de23001b"  # the mod.build.* examples' core checksum
ALICE_PASSWORD = "correct-horse-42"  # as in the player.password and session.login examples


# What each operation's example needs besides the common world, by operation name; a key
# ending in "." applies to every operation it starts (``needs`` takes the union):
#   nobody       no players at all (player.register makes alice)
#   session2     a second session of alice's to end
#   no_board     no board (board.create makes it)
#   daily        a daily board beside ctf.ac_desert (the season examples read one)
#   ban          a ban on alice, by the admin, or by the server with ban_by_server
#   clan         clan ACE owned by alice with bob invited (no_clan: none)
#   bob_owns     ... owned by bob with alice invited instead
#   member       ... with the invited player a member
#   build        a known build of the core
NEEDS: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in {
    "player.register": {"nobody"},
    "session.end": {"session2"},
    "board.create": {"no_board"},
    "season.": {"daily"},
    "ban.check": {"ban"}, "ban.list": {"ban"}, "ban.lift": {"ban", "ban_by_server"},
    "clan.": {"clan"}, "clan.create": {"no_clan"},
    "name.check": {"clan"}, "player.get": {"clan"},  # player.get shows alice's clan
    "clan.accept": {"bob_owns"},
    "clan.get": {"member"}, "clan.remove": {"member"}, "clan.transfer": {"member"},
    "mod.build.list": {"build"}, "mod.build.delete": {"build"},
}.items()}


def needs(op_name: str) -> frozenset[str]:
    """The union of NEEDS for ``op_name`` and every prefix of it listed there."""
    return frozenset().union(*(v for k, v in NEEDS.items()
                               if k == op_name or (k.endswith(".") and op_name.startswith(k))))


def world(api: Any, op_name: str) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Two live servers, players alice and bob online on the first, a board with both their
    records, a mail from bob to alice, a message to the first server, settings of alice and the
    server, the server in channel lobby, a webhook with one delivery logged; and what NEEDS says
    the operation's example needs besides. Returns (example value -> real value, headers by
    kind)."""
    need = needs(op_name)
    c = api.client
    sid, srv = api.server("Desert CTF #1")
    sid2, srv2 = api.server("Other")
    for s, h in ((sid, srv), (sid2, srv2)):
        assert api.heartbeat(s, h).status_code == 200
    real = {SERVER: sid, OTHER_SERVER: sid2}
    callers = {"anonymous": {}, "admin": api.admin, "server": srv}
    if "nobody" in need:
        return real, callers
    alice, bob = api.player("alice", ALICE_PASSWORD), api.player("bob", "bob-password-1")
    callers["player"] = alice
    real[TOKEN] = api.token(alice)
    if "session2" in need:
        real[SESSION] = sessions.session_id(sha256(api.token(api.login("alice",
                                                                        ALICE_PASSWORD))))
    for player in (alice, bob):
        assert api.join(sid, srv, player).status_code == 200
    if "no_board" not in need:
        daily = [("ctf.daily", "daily")] if "daily" in need else []
        for board, reset in [("ctf.ac_desert", None), *daily]:
            assert c.put(f"/v1/boards/{board}", json={"order": "desc", "operator": "best",
                                                      **({"reset": reset} if reset else {})},
                         headers=api.admin).status_code == 201
            for name, score in (("alice", 7), ("bob", 5)):
                assert c.post(f"/v1/boards/{board}/records", headers=srv,
                              json={"player": name, "score": score, "meta": {"flags": score}}
                              ).status_code == 200
    sent = c.post("/v1/mail", json={"to": "alice", "subject": "hi", "body": "gg"}, headers=bob)
    real[MAIL] = sent.json["id"]
    assert c.post("/v1/messages", json={"to": sid, "body": "hello"},
                  headers=srv2).status_code == 202
    assert c.put(f"/v1/servers/{sid}/channels/lobby", headers=srv).status_code == 200
    for key, value in (("hud.scale", 1.25), ("crosshair", "dot")):
        assert c.put(f"/v1/players/alice/settings/{key}", json={"value": value},
                     headers=alice).status_code == 200
    assert c.put(f"/v1/servers/{sid}/settings/motd", json={"value": "hi"},
                 headers=srv).status_code == 200
    if "ban" in need:
        made = c.post("/v1/bans", json={"player": "alice", "reason": "wallhack",
                                        "duration": 86400},
                      headers=srv if "ban_by_server" in need else api.admin)
        real[BAN] = made.json["id"]
    if "clan" in need and "no_clan" not in need:
        owner, guest, guest_name = (bob, alice, "alice") if "bob_owns" in need else \
            (alice, bob, "bob")
        assert c.put("/v1/clans/ACE", json={"name": "Aces High"},
                     headers=owner).status_code == 201
        assert c.put(f"/v1/clans/ACE/members/{guest_name}", headers=owner).status_code == 200
        if "member" in need:
            assert c.post("/v1/clans/ACE/join", headers=guest).status_code == 200
    hook = c.post("/v1/webhooks", json={"url": "https://hooks.example.com/ssm",
                                        "events": ["record.top"]}, headers=api.admin).json["id"]
    attempt = {"at": 1.0, "event": "record.top", "event_id": "b:x/1-0", "attempt": 1,
               "status": 200, "error": None, "ms": 5, "outcome": "delivered"}
    webhooks.record(c.application.extensions["ssm"]["redis"], hook, "job", attempt,
                    "delivered", None)
    real[WEBHOOK] = hook
    if "build" in need:
        assert c.put(f"/v1/mod/builds/{BUILD}", json={"version": "9.0.0"},
                     headers=api.admin).status_code == 201
    return real, callers


def real_value(value: Any, real: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: real_value(v, real) for k, v in value.items()}
    if isinstance(value, list):
        return [real_value(v, real) for v in value]
    return real.get(value, value) if isinstance(value, str) else value


def real_example(op: Operation, real: dict[str, str]) -> apidoc.Example | None:
    """The operation's documented example with the world's real ids and secrets in it."""
    return apidoc.example(dataclasses.replace(
        op, example={**op.example, "request": real_value(op.example["request"], real)}))
