"""server.rotate_key and server.delete (admin)."""

from __future__ import annotations

import pytest

from shared import keys
from shared.redis_conn import scan_keys
from shared.storage import messages
from tests.helpers import dump
from tests.relay_client import authed, server_creds


# --- server.create: Idempotency-Key -------------------------------------------------------
def test_create_repeat_answers_the_first_server_without_its_key(api, client, r):
    headers = {**api.admin, "Idempotency-Key": "k1"}
    first = client.post("/v1/servers", json={"name": "Desert"}, headers=headers)
    again = client.post("/v1/servers", json={"name": "Desert"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json == {k: v for k, v in first.json.items() if k != "key"}
    assert set(again.json) == {"id", "name", "created"}
    assert r.smembers(keys.servers_all()) == {first.json["id"]}  # one server made
    assert first.json["key"] not in dump(r)  # no plaintext key anywhere in Redis
    assert api.heartbeat(first.json["id"], api.bearer(first.json["key"])).status_code == 200


def test_create_same_key_other_body_is_422_and_changes_nothing(api, client, r):
    headers = {**api.admin, "Idempotency-Key": "k1"}
    first = client.post("/v1/servers", json={"name": "Desert"}, headers=headers)
    other = client.post("/v1/servers", json={"name": "Arctic"}, headers=headers)
    assert other.status_code == 422, other.json
    assert other.json["error"]["code"] == "idempotency_key_reused"
    assert r.smembers(keys.servers_all()) == {first.json["id"]}


def test_create_same_body_other_spelling_replays(api, client):
    headers = {**api.admin, "Idempotency-Key": "k1", "Content-Type": "application/json"}
    first = client.post("/v1/servers", data='{"name":"Desert"}', headers=headers)
    again = client.post("/v1/servers", data='{ "name" :  "Desert" }\n', headers=headers)
    assert again.status_code == 201 and again.json["id"] == first.json["id"]


def test_same_body_in_another_key_order_replays_and_other_body_is_422(api, client):
    _, srv = api.server("a")
    _, reader = api.server("b")
    headers = {**srv, "Idempotency-Key": "m1", "Content-Type": "application/json"}
    first = client.post("/v1/messages", data='{"to": "*", "body": "hi"}', headers=headers)
    again = client.post("/v1/messages", data='{"body":"hi","to":"*"}', headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json == first.json
    other = client.post("/v1/messages", data='{"to": "*", "body": "hi!"}', headers=headers)
    assert other.status_code == 422 and other.json["error"]["code"] == "idempotency_key_reused"
    assert len(client.get("/v1/messages", headers=reader).json["messages"]) == 1


def test_reused_idempotency_key_over_the_relay_is_422(start_relay, api):
    relay = start_relay()
    sid, key, _ = server_creds(api, "a")
    c = authed(relay.port, sid, key)
    first = c.cmd("message.send", {"to": "*", "body": "hi"}, idempotency_key="r1")
    again = c.cmd("message.send", {"body": "hi", "to": "*"}, idempotency_key="r1")
    assert first["state"] == again["state"] == "OK" and again["data"] == first["data"]
    other = c.cmd("message.send", {"to": "*", "body": "bye"}, idempotency_key="r1")
    assert (other["state"], other["code"]) == ("ERROR", "idempotency_key_reused")
    c.close()


def test_same_key_while_in_progress_other_body_is_422(api, client, r):
    from shared.dispatch import fingerprint
    from shared.registry import REGISTRY

    key = keys.idempotency("admin:admin", "server.create", "k1")
    r.set(key, "pending:" + fingerprint(REGISTRY["server.create"], {"name": "Desert"}))
    headers = {**api.admin, "Idempotency-Key": "k1"}
    same = client.post("/v1/servers", json={"name": "Desert"}, headers=headers)
    assert same.status_code == 409 and same.json["error"]["code"] == "request_in_progress"
    other = client.post("/v1/servers", json={"name": "Arctic"}, headers=headers)
    assert other.status_code == 422 and other.json["error"]["code"] == "idempotency_key_reused"


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


def test_rotate_key_repeat_rotates_nothing_and_replays_no_key(api, client, r):
    sid, _ = api.server("Desert")
    headers = {**api.admin, "Idempotency-Key": "same"}
    first = client.post(f"/v1/servers/{sid}/key", headers=headers)
    again = client.post(f"/v1/servers/{sid}/key", headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json == {"id": sid, "name": "Desert"}  # the first answer without its key
    assert api.heartbeat(sid, api.bearer(first.json["key"])).status_code == 200  # still valid
    assert first.json["key"] not in dump(r)
    fresh = client.post(f"/v1/servers/{sid}/key", headers={**api.admin, "Idempotency-Key": "new"})
    assert fresh.json["key"] != first.json["key"]  # a new key takes a new Idempotency-Key
    assert api.heartbeat(sid, api.bearer(first.json["key"])).status_code == 401


def test_rotate_key_same_idempotency_key_for_another_server_is_422(api, client):
    sid_a, _ = api.server("a")
    sid_b, srv_b = api.server("b")
    headers = {**api.admin, "Idempotency-Key": "same"}
    assert client.post(f"/v1/servers/{sid_a}/key", headers=headers).status_code == 200
    resp = client.post(f"/v1/servers/{sid_b}/key", headers=headers)
    assert resp.status_code == 422 and resp.json["error"]["code"] == "idempotency_key_reused"
    assert api.heartbeat(sid_b, srv_b).status_code == 200  # b was not rotated


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
    assert scan_keys(r, f"*{{s:{sid}}}*") == []
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
    resp = client.delete("/v1/servers/Bad!", headers=api.admin)
    assert resp.status_code == 400 and resp.json["error"]["code"] == "invalid_input"
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
