"""server.rotate_key and server.delete (admin)."""

from __future__ import annotations

import pytest

from shared import keys, messages


# --- server.rotate_key ----------------------------------------------------------------------
def test_rotate_key_old_key_dead_new_key_works(api, client, r):
    sid, old = api.server("Desert")
    resp = client.post(f"/v1/servers/{sid}/key", headers=api.admin)
    assert resp.status_code == 200
    body = resp.json
    assert set(body) == {"id", "name", "key"}
    assert body["id"] == sid and body["name"] == "Desert"
    assert body["key"] != api.token(old) and body["key"].startswith(f"s.{sid}.")
    assert api.heartbeat(sid, old).status_code == 401
    assert api.heartbeat(sid, api.bearer(body["key"])).status_code == 200
    assert body["key"] not in str(r.hgetall(keys.server(sid)))  # stored only as a hash


def test_rotate_key_is_never_replayed(api, client):
    sid, _ = api.server()
    headers = {**api.admin, "Idempotency-Key": "same"}
    first = client.post(f"/v1/servers/{sid}/key", headers=headers).json["key"]
    second = client.post(f"/v1/servers/{sid}/key", headers=headers).json["key"]
    assert first != second
    assert api.heartbeat(sid, api.bearer(first)).status_code == 401
    assert api.heartbeat(sid, api.bearer(second)).status_code == 200


def test_rotate_key_errors_and_auth(api, client):
    sid, srv = api.server()
    resp = client.post("/v1/servers/nosuchserver/key", headers=api.admin)
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"
    assert client.post("/v1/servers/BAD-ID/key", headers=api.admin).status_code == 400
    assert client.post(f"/v1/servers/{sid}/key").status_code == 401
    assert client.post(f"/v1/servers/{sid}/key", headers=srv).status_code == 403
    assert client.post(f"/v1/servers/{sid}/key", headers=api.player()).status_code == 403
    assert api.heartbeat(sid, srv).status_code == 200  # refused calls changed nothing


# --- server.delete --------------------------------------------------------------------------
def test_delete_server_removes_everything(api, client, r, config):
    sid, srv = api.server("gone")
    keep, keep_headers = api.server("kept")
    for s, h in ((sid, srv), (keep, keep_headers)):
        assert api.heartbeat(s, h).status_code == 200
    alice, bob = api.player("alice"), api.player("bob")
    assert api.join(sid, srv, alice).status_code == 200
    assert api.join(keep, keep_headers, bob).status_code == 200
    client.put(f"/v1/servers/{sid}/settings/motd", json={"value": "hi"}, headers=srv)
    for chan in ("ctf", "duel"):  # channel memberships as channel.join stores them
        r.sadd(keys.channel(chan), sid, keep)
        r.sadd(keys.server_channels(sid), chan)
    messages.deliver(r, config, sid, keep, "message", {"body": "hello"})
    assert r.exists(keys.inbox(sid))

    resp = client.delete(f"/v1/servers/{sid}", headers=api.admin)
    assert resp.status_code == 204 and resp.data == b""
    assert r.keys(f"*{{s:{sid}}}*") == []
    assert not r.exists(keys.inbox(sid), keys.server_channels(sid))
    assert r.smembers(keys.channel("ctf")) == {keep} == r.smembers(keys.channel("duel"))
    assert r.smembers(keys.servers_all()) == {keep}
    assert r.zscore(keys.status_live(), sid) is None
    assert not r.hexists(keys.status_data(), sid)
    assert [s["id"] for s in client.get("/v1/status").json["servers"]] == [keep]
    assert client.get(f"/v1/status/{sid}").status_code == 404
    gone = client.get("/v1/players/alice").json
    assert gone["online"] is False and gone["server"] is None
    assert r.hget(keys.player("alice"), "server") is None
    assert client.get("/v1/players/bob").json["server"] == keep
    assert api.heartbeat(sid, srv).status_code == 401  # its key is dead
    assert api.heartbeat(keep, keep_headers).status_code == 200


def test_delete_server_leaves_players_who_moved_on(api, client, r):
    sid, srv = api.server("a")
    other, other_headers = api.server("b")
    api.heartbeat(other, other_headers)
    alice = api.player("alice")
    assert api.join(other, other_headers, alice).status_code == 200
    r.sadd(keys.server_players(sid), "alice")  # a stale entry left behind on the deleted server
    assert client.delete(f"/v1/servers/{sid}", headers=api.admin).status_code == 204
    assert r.hget(keys.player("alice"), "server") == other


def test_delete_server_errors_and_auth(api, client):
    sid, srv = api.server()
    resp = client.delete("/v1/servers/nosuchserver", headers=api.admin)
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"
    assert client.delete("/v1/servers/Bad!", headers=api.admin).status_code in (400, 404)
    assert client.delete(f"/v1/servers/{sid}").status_code == 401
    assert client.delete(f"/v1/servers/{sid}", headers=srv).status_code == 403
    assert client.delete(f"/v1/servers/{sid}", headers=api.player()).status_code == 403
    assert client.delete(f"/v1/servers/{sid}", headers=api.admin).status_code == 204
    assert client.delete(f"/v1/servers/{sid}", headers=api.admin).status_code == 404


@pytest.mark.parametrize("path", ["/v1/servers/{sid}/key", "/v1/servers"])
def test_server_responses_carry_only_the_key_they_issue(api, client, r, path):
    sid, srv = api.server()
    stored = r.hget(keys.server(sid), "key")
    resp = client.post(path.format(sid=sid), json={"name": "x"} if "{" not in path else None,
                       headers=api.admin)
    text = resp.get_data(as_text=True)
    assert stored not in text and api.token(srv) not in text
    assert resp.json["key"] in text
