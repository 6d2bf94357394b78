"""The audit log (README "Moderation"): recorded from dispatch for every declared operation;
audit.list."""

from __future__ import annotations

import json
import time

import pytest

from shared import keys
from shared.auth import ADMIN_CALLER
from shared.dispatch import Ctx, run
from shared.registry import ADMIN, load
from shared.storage import audit


def entries(client, headers, **query):
    return client.get("/v1/audit", query_string=query, headers=headers)


def test_every_admin_only_write_declares_audit():
    """A new admin operation cannot forget the audit log: every admin-only operation that is
    not a read declares ``audit=``."""
    missing = [op.name for op in load().values()
               if op.auth == ADMIN and op.method != "GET" and not op.audit]
    assert not missing, missing


def test_the_listed_actions_are_audited():
    registry = load()
    for name in ("server.create", "server.delete", "server.rotate_key", "board.create",
                 "ban.create", "ban.lift", "record.void", "clan.transfer", "clan.delete",
                 "player.delete"):
        assert registry[name].audit, name
    assert registry["player.delete"].audit_by == ADMIN  # by the admin only


def test_a_secret_field_cannot_be_an_audit_target():
    from shared.registry import operation
    from shared.schema import Str

    with pytest.raises(ValueError, match="secret"):
        operation("test.secret", "POST", "/v1/x", fields=(Str("token", secret=True),),
                  audit="token")(lambda ctx, args: None)


def test_admin_actions_are_recorded_newest_first(api, client, clock):
    sid, srv = api.server("Desert")
    client.post(f"/v1/servers/{sid}/key", headers=api.admin)
    client.put("/v1/boards/ctf", json={"order": "desc", "operator": "best"}, headers=api.admin)
    api.player("alice")
    made = client.post("/v1/bans", json={"player": "alice", "reason": "wallhack"},
                       headers=api.admin).json
    clock.advance(5)
    client.delete(f"/v1/bans/{made['id']}?reason=appeal", headers=api.admin)
    client.delete(f"/v1/servers/{sid}", headers=api.admin)
    client.delete("/v1/players/alice", headers=api.admin)
    got = entries(client, api.admin).json
    assert got["next_cursor"] is None
    ops = [(e["op"], e["by"], e["target"], e["reason"]) for e in got["entries"]]
    assert ops == [
        ("player.delete", "admin", "alice", None),
        ("server.delete", "admin", sid, None),
        ("ban.lift", "admin", made["id"], "appeal"),
        ("ban.create", "admin", f"{made['id']} player=alice", "wallhack"),
        ("board.create", "admin", "ctf", None),
        ("server.rotate_key", "admin", sid, None),
        ("server.create", "admin", f"{sid} name=Desert", None),
    ]
    ats = [e["at"] for e in got["entries"]]
    assert ats == sorted(ats, reverse=True) and ats[2] - ats[3] >= 5  # the ctx clock


def test_a_servers_moderation_is_recorded_and_a_players_own_delete_is_not(api, client):
    sid, srv = api.server()
    bob = api.player("bob")
    api.player("alice")
    made = client.post("/v1/bans", json={"player": "alice", "reason": "x"}, headers=srv).json
    client.delete(f"/v1/bans/{made['id']}", headers=srv)
    client.delete("/v1/players/bob", headers=bob)
    ops = [(e["op"], e["by"]) for e in entries(client, api.admin).json["entries"]]
    assert ops[:2] == [("ban.lift", f"server:{sid}"), ("ban.create", f"server:{sid}")]
    assert "player.delete" not in [op for op, _ in ops]


def test_failed_actions_and_replays_are_not_recorded(api, client):
    assert client.delete("/v1/servers/nosuch", headers=api.admin).status_code == 404
    headers = {**api.admin, "Idempotency-Key": "k1"}
    first = client.post("/v1/servers", json={"name": "a"}, headers=headers)
    again = client.post("/v1/servers", json={"name": "a"}, headers=headers)
    assert first.json["id"] == again.json["id"]
    assert [e["op"] for e in entries(client, api.admin).json["entries"]] == ["server.create"]


def test_secrets_never_appear(api, client, r):
    sid, srv = api.server("s")
    rotated = client.post(f"/v1/servers/{sid}/key", headers=api.admin).json["key"]
    alice = api.player("alice", "hunter22")
    client.post(f"/v1/servers/{sid}/players", json={"token": api.token(alice)}, headers=srv)
    client.delete("/v1/players/alice", headers=api.admin)
    log = json.dumps(r.xrange(keys.audit_log()))
    for secret in (api.token(srv), rotated, api.token(alice), "hunter22",
                   rotated.rsplit(".", 1)[1]):
        assert secret not in log


def test_pages_with_a_cursor(api, client):
    for i in range(5):
        client.put(f"/v1/boards/b{i}", json={"order": "asc", "operator": "set"},
                   headers=api.admin)
    page1 = entries(client, api.admin, limit=2).json
    assert [e["target"] for e in page1["entries"]] == ["b4", "b3"] and page1["next_cursor"]
    page2 = entries(client, api.admin, limit=2, cursor=page1["next_cursor"]).json
    page3 = entries(client, api.admin, limit=2, cursor=page2["next_cursor"]).json
    assert [e["target"] for e in page2["entries"] + page3["entries"]] == ["b2", "b1", "b0"]
    assert page3["next_cursor"] is None


def test_audit_list_auth_and_validation(api, client):
    sid, srv = api.server()
    alice = api.player("alice")
    assert entries(client, {}).status_code == 401
    assert entries(client, alice).status_code == 403
    assert entries(client, srv).status_code == 403
    assert entries(client, api.admin).status_code == 200
    for query in ({"limit": 0}, {"limit": 501}, {"cursor": "abc"}, {"cursor": "1-2-3"}):
        assert entries(client, api.admin, **query).status_code == 400, query


def test_entries_older_than_a_year_are_trimmed_on_append(r):
    now = time.time()
    for target, days in (("old", audit.KEEP_DAYS + 1), ("kept", audit.KEEP_DAYS - 1)):
        r.xadd(keys.audit_log(), {"op": "board.create", "target": target},
               id=f"{int((now - days * 86400) * 1000)}-0")
    audit.record(r, "board.create", "admin", "new", "", now)
    assert [f["target"] for _, f in r.xrange(keys.audit_log())] == ["kept", "new"]


def test_the_cli_and_the_relay_path_are_audited_too(r, config):
    """Every transport runs operations through dispatch.run, which records the entry."""
    ctx = Ctx(r, config, ADMIN_CALLER, ip="cli")
    run(load()["board.create"], ctx, {"board": "x", "order": "asc", "operator": "set"})
    assert [f["op"] for _, f in r.xrange(keys.audit_log())] == ["board.create"]


def test_the_admin_cli_covers_bans_clans_voids_and_the_audit_log(app, api, client):
    runner = app.test_cli_runner()

    def cli(*args: str, ok: bool = True):
        result = runner.invoke(args=list(args))
        assert (result.exit_code == 0) is ok, result.output
        return json.loads(result.output) if ok else result.output

    sid, srv = api.server()
    api.heartbeat(sid, srv)
    people = {n: api.player(n) for n in ("alice", "bob")}
    made = cli("ban", "create", "--player", "alice", "--reason", "wallhack", "--duration", "60")
    assert made["player"] == "alice" and made["expires_at"] == made["at"] + 60
    ranged = cli("ban", "create", "--ip", "10.0.0.0/8", "--reason", "x", "--force")
    assert ranged["ip"] == "10.0.0.0/8"
    assert "invalid_input: ip" in cli("ban", "create", "--ip", "10.0.0.0/8", "--reason", "x",
                                      ok=False)
    assert [b["id"] for b in cli("ban", "list", "--player", "alice")["bans"]] == [made["id"]]
    assert cli("ban", "lift", made["id"], "--reason", "appeal") == {"lifted": made["id"]}
    assert [b["id"] for b in cli("ban", "list", "--active")["bans"]] == [ranged["id"]]
    client.put("/v1/clans/ACE", json={"name": "Aces"}, headers=people["alice"])
    client.put("/v1/clans/ACE/members/bob", headers=people["alice"])
    client.post("/v1/clans/ACE/join", headers=people["bob"])
    assert cli("clan", "get", "ace")["members"] == ["alice", "bob"]
    assert cli("clan", "transfer", "ACE", "bob", "--reason", "dispute") == {"tag": "ACE",
                                                                            "owner": "bob"}
    assert cli("clan", "delete", "ACE") == {"deleted": "ACE"}
    client.put("/v1/boards/ctf", json={"order": "desc", "operator": "best"}, headers=api.admin)
    api.join(sid, srv, people["bob"])
    client.post("/v1/boards/ctf/records", json={"player": "bob", "score": 3}, headers=srv)
    assert cli("board", "void", "ctf", "bob", "--reason", "glitch") == {
        "voided": {"board": "ctf", "player": "bob"}}
    ops = [e["op"] for e in cli("audit", "list", "--limit", "6")["entries"]]
    assert ops == ["record.void", "board.create", "clan.delete", "clan.transfer", "ban.lift",
                   "ban.create"]
