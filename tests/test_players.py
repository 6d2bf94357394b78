"""session.logout, player.get, player.password, player.delete."""

from __future__ import annotations

import json

import pytest

from shared import keys
from shared.redis_conn import scan_keys

SECRET_FIELDS = ("pw", "password", "key", "token")


# --- session.logout -------------------------------------------------------------------------
def test_logout_kills_only_that_token(api, client, r):
    one = api.player("alice")
    two = api.login("alice")
    resp = client.delete("/v1/sessions/current", headers=one)
    assert resp.status_code == 204 and resp.data == b""
    again = client.delete("/v1/sessions/current", headers=one)
    assert again.status_code == 401 and again.json["error"]["code"] == "unauthenticated"
    assert client.get("/v1/players/alice/settings", headers=two).status_code == 200
    assert r.zcard(keys.player_sessions("alice")) == 1


@pytest.mark.parametrize("who", ["anonymous", "server", "admin"])
def test_logout_needs_a_player(api, client, who):
    headers = {"anonymous": {}, "server": api.server()[1], "admin": api.admin}[who]
    resp = client.delete("/v1/sessions/current", headers=headers)
    assert resp.status_code == (401 if who == "anonymous" else 403)


# --- player.get -----------------------------------------------------------------------------
def test_player_get_public_profile(api, client, clock):
    api.player("Alice")
    resp = client.get("/v1/players/aLiCe")
    assert resp.status_code == 200
    body = resp.json
    assert set(body) == {"id", "name", "created", "last_seen", "online", "server"}
    assert body["name"] == "Alice" and body["online"] is False and body["server"] is None
    assert isinstance(body["created"], int) and abs(body["created"] - clock()) < 5
    assert isinstance(body["last_seen"], int)


def test_player_get_never_logged_in_has_null_last_seen(client):
    client.post("/v1/players", json={"name": "bob", "password": "secret1"})
    assert client.get("/v1/players/bob").json["last_seen"] is None


def test_player_get_online_only_while_server_live(api, client, clock, config):
    sid, srv = api.server()
    api.heartbeat(sid, srv)
    assert api.join(sid, srv, api.player("alice")).status_code == 200
    body = client.get("/v1/players/alice").json
    assert body["online"] is True and body["server"] == sid
    clock.advance(config.status_ttl + 1)
    body = client.get("/v1/players/alice").json
    assert body["online"] is False and body["server"] is None


@pytest.mark.parametrize("name,status", [("nobody", 404), ("x", 400), ("bad name", 400),
                                         ("a" * 16, 400)])
def test_player_get_errors(client, name, status):
    resp = client.get(f"/v1/players/{name}")
    assert resp.status_code == status
    assert resp.json["error"]["code"] == ("not_found" if status == 404 else "invalid_input")


def test_player_get_with_tokens_is_fine(api, client):
    alice = api.player("alice")
    _, srv = api.server()
    for headers in (alice, srv, api.admin):
        assert client.get("/v1/players/alice", headers=headers).status_code == 200


# --- player.password ------------------------------------------------------------------------
def test_password_change_kills_other_sessions(api, client):
    current = api.player("alice", "secret1")
    other = api.login("alice", "secret1")
    resp = client.put("/v1/players/alice/password", json={"old": "secret1", "new": "better22"},
                      headers=current)
    assert resp.status_code == 200 and resp.json == {"sessions_ended": 1}
    assert client.get("/v1/players/alice/settings", headers=other).status_code == 401
    assert client.get("/v1/players/alice/settings", headers=current).status_code == 200
    old = client.post("/v1/sessions", json={"name": "alice", "password": "secret1"})
    assert old.status_code == 401
    assert api.login("alice", "better22")


def test_password_wrong_old_is_401_and_changes_nothing(api, client):
    alice = api.player("alice", "secret1")
    other = api.login("alice", "secret1")
    resp = client.put("/v1/players/alice/password", json={"old": "wrong11", "new": "better22"},
                      headers=alice)
    assert resp.status_code == 401
    assert resp.json["error"]["code"] == "invalid_credentials"
    assert client.get("/v1/players/alice/settings", headers=other).status_code == 200
    assert api.login("alice", "secret1")


@pytest.mark.parametrize("body,field", [
    ({"old": "secret1", "new": "short"}, "new"), ({"old": "secret1", "new": "x" * 129}, "new"),
    ({"old": "secret1"}, "new"), ({"new": "better22"}, "old"),
    ({"old": "secret1", "new": 123456}, "new"), ({"old": 1, "new": "better22"}, "old"),
])
def test_password_validation(api, client, body, field):
    alice = api.player("alice")
    resp = client.put("/v1/players/alice/password", json=body, headers=alice)
    assert resp.status_code == 400
    assert resp.json["error"]["message"].startswith(field)


def test_password_auth(api, client):
    api.player("alice")
    bob = api.player("bob")
    body = {"old": "secret1", "new": "better22"}
    assert client.put("/v1/players/alice/password", json=body).status_code == 401
    assert client.put("/v1/players/alice/password", json=body,
                      headers=bob).status_code == 403
    assert client.put("/v1/players/alice/password", json=body,
                      headers=api.server()[1]).status_code == 403
    assert client.put("/v1/players/alice/password", json=body,
                      headers=api.admin).status_code == 403


# --- player.delete --------------------------------------------------------------------------
def _seed_mail(r, lname: str) -> None:
    """Mail as the mail operations store it (keys.py layout)."""
    for seq, mail_id in enumerate(("m1", "m2"), 1):
        r.hset(keys.mail(lname, mail_id), mapping={"id": mail_id, "from": "bob", "body": "hi"})
        r.zadd(keys.mailbox(lname), {mail_id: seq})
    r.zadd(keys.mailbox_unread(lname), {"m2": 2})
    r.set(keys.mail_seq(lname), 2)
    r.sadd(keys.mail_notified(lname), "m1")


def test_delete_removes_everything_and_frees_name(api, client, r):
    alice = api.player("Alice")
    other_session = api.login("Alice")
    bob = api.player("bob")
    sid, srv = api.server()
    api.heartbeat(sid, srv)
    assert api.join(sid, srv, alice).status_code == 200
    assert api.join(sid, srv, bob).status_code == 200
    assert client.put("/v1/boards/ctf", json={"order": "desc", "operator": "best"},
                      headers=api.admin).status_code == 201
    for name in ("alice", "bob"):
        resp = client.post("/v1/boards/ctf/records", json={"player": name, "score": 5},
                           headers=srv)
        assert resp.status_code == 200, resp.json
    client.put("/v1/players/alice/settings/fov", json={"value": 90}, headers=alice)
    _seed_mail(r, "alice")
    r.set(keys.login_fails_name("alice"), 2)

    resp = client.delete("/v1/players/ALICE", headers=alice)
    assert resp.status_code == 204
    assert scan_keys(r, "*{p:alice}*") == []
    assert not r.hexists(keys.board_records("ctf"), "alice")
    assert [m.endswith(":alice") for m in r.zrange(keys.board_rank("ctf"), 0, -1)] == [False]
    assert r.hexists(keys.board_records("ctf"), "bob")
    assert r.smembers(keys.server_players(sid)) == {"bob"}
    for headers in (alice, other_session):
        assert client.get("/v1/players/alice/settings", headers=headers).status_code == 401
    assert client.get("/v1/players/alice").status_code == 404
    again = client.post("/v1/players", json={"name": "alice", "password": "newpass1"})
    assert again.status_code == 201
    assert client.get("/v1/players/alice/settings",
                      headers=api.login("alice", "newpass1")).json == {"settings": {}}


def test_leftover_of_a_racing_write_does_not_hold_the_name(api, client, r):
    api.player("alice")
    client.delete("/v1/players/alice", headers=api.admin)
    r.hset(keys.player("alice"), mapping={"last_seen": 1, "server": "gone"})  # a late write
    assert client.post("/v1/players", json={"name": "alice", "password": "secret1"}
                       ).status_code == 201
    assert client.get("/v1/players/alice").json["server"] is None
    assert r.hget(keys.player("alice"), "server") is None


def test_admin_may_delete_any_player(api, client):
    api.player("alice")
    assert client.delete("/v1/players/alice", headers=api.admin).status_code == 204
    assert client.get("/v1/players/alice").status_code == 404


def test_delete_auth_and_not_found(api, client):
    api.player("alice")
    bob = api.player("bob")
    _, srv = api.server()
    assert client.delete("/v1/players/alice").status_code == 401
    assert client.delete("/v1/players/alice", headers=bob).status_code == 403
    assert client.delete("/v1/players/alice", headers=srv).status_code == 403
    resp = client.delete("/v1/players/nobody", headers=api.admin)
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"
    assert client.delete("/v1/players/x", headers=api.admin).status_code == 400
    assert client.get("/v1/players/alice").status_code == 200


# --- no secrets in responses ----------------------------------------------------------------
def _walk(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def test_profile_never_shows_secrets(api, client, r):
    alice = api.player("alice", "secret1")
    token = api.token(alice)
    pw_hash = r.hget(keys.player("alice"), "pw")
    sid, srv = api.server()
    api.heartbeat(sid, srv)
    api.join(sid, srv, alice)
    text = client.get("/v1/players/alice").get_data(as_text=True)
    for secret in ("secret1", token, pw_hash, api.token(srv)):
        assert secret not in text
    assert not [k for k, _ in _walk(json.loads(text)) if k in SECRET_FIELDS]


def test_player_get_hides_a_private_server_as_status_get_does(api, client):
    sid, srv = api.server()
    api.heartbeat(sid, srv, public=False)
    assert api.join(sid, srv, api.player("alice")).status_code == 200
    assert client.get(f"/v1/status/{sid}").status_code == 404
    body = client.get("/v1/players/alice").json
    assert body["online"] is True and body["server"] is None
    api.heartbeat(sid, srv, public=True)
    assert client.get("/v1/players/alice").json["server"] == sid
