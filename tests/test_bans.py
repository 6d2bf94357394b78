"""Bans (README "Moderation"): ban.create, ban.lift, ban.list, ban.check; enforcement at
presence.join; the
inbox entries; the ordered steps and the worker's redelivery."""

from __future__ import annotations

import json
import time

import pytest

from shared import keys
from shared.redis_conn import scan_keys
from shared.storage import bans
from tests.conftest import on_cluster
from tests.relay_client import authed, greeted, server_creds, spawn


@pytest.fixture
def world(api):
    """Two live servers and alice online on the first: (sid, srv, sid2, srv2, alice)."""
    sid, srv = api.server("one")
    sid2, srv2 = api.server("two")
    for s, h in ((sid, srv), (sid2, srv2)):
        assert api.heartbeat(s, h).status_code == 200
    alice = api.player("Alice")
    assert api.join(sid, srv, alice).status_code == 200
    return sid, srv, sid2, srv2, alice


def ban(client, headers, **body):
    return client.post("/v1/bans", json=body, headers=headers)


def check(client, headers, **query):
    return client.get("/v1/bans/check", query_string=query, headers=headers)


def everything(r) -> str:
    """Every key and value in Redis as text."""
    read = {"string": r.get, "hash": r.hgetall, "set": r.smembers,
            "list": lambda k: r.lrange(k, 0, -1),
            "zset": lambda k: r.zrange(k, 0, -1, withscores=True), "stream": lambda k: r.xrange(k)}
    return json.dumps({k: read[r.type(k)](k) for k in scan_keys(r, "*")}, default=list)


def join_ip(api, sid, srv, player, ip):
    return api.client.post(f"/v1/servers/{sid}/players",
                           json={"token": api.token(player), "ip": ip}, headers=srv)


# --- ban.create -------------------------------------------------------------------------------
def test_admin_bans_a_player_everywhere(api, client, world, r):
    sid, srv, sid2, srv2, alice = world
    resp = ban(client, api.admin, player="alice", reason="wallhack", duration=3600)
    assert resp.status_code == 201, resp.json
    body = resp.json
    assert list(body) == ["id", "player", "ip", "reason", "scope", "by", "at", "expires_at"]
    assert body["player"] == "Alice" and body["ip"] is None and body["scope"] == "global"
    assert body["by"] == "admin" and body["expires_at"] == body["at"] + 3600
    for headers in (srv, srv2):
        got = check(client, headers, player="alice").json
        assert got == {"banned": True, "bans": [body]}
    assert not r.zcard(keys.ban_outbox())  # every step done


def test_a_banned_player_online_in_scope_is_offline_before_the_answer(api, client, world, r):
    sid, srv, _, _, _ = world
    assert client.get("/v1/players/alice").json["online"] is True
    assert ban(client, api.admin, player="alice", reason="x").status_code == 201
    assert client.get("/v1/players/alice").json["online"] is False
    assert r.smembers(keys.server_players(sid)) == set()


def test_a_ban_scoped_to_another_server_leaves_the_player_online(api, client, world):
    _, _, sid2, srv2, _ = world
    assert ban(client, srv2, player="alice", reason="x").status_code == 201
    assert client.get("/v1/players/alice").json["online"] is True


def test_permanent_ban_and_zero_duration(api, client, world):
    assert ban(client, api.admin, player="alice", reason="x").json["expires_at"] is None
    assert ban(client, api.admin, player="alice", reason="y",
               duration=0).json["expires_at"] is None


def test_server_bans_on_its_own_scope(api, client, world):
    sid, srv, sid2, srv2, _ = world
    resp = ban(client, srv, player="alice", reason="teamkilling")
    assert resp.status_code == 201
    assert resp.json["scope"] == sid and resp.json["by"] == sid
    assert ban(client, srv, player="alice", reason="x", scope=sid).status_code == 201
    assert check(client, srv, player="alice").json["banned"] is True
    assert check(client, srv2, player="alice").json == {"banned": False, "bans": []}


@pytest.mark.parametrize("scope", ["global", "other"])
def test_server_asking_for_another_scope_is_forbidden(api, client, world, scope):
    _, srv, sid2, _, _ = world
    resp = ban(client, srv, player="alice", reason="x",
               scope=sid2 if scope == "other" else "global")
    assert resp.status_code == 403 and resp.json["error"]["code"] == "forbidden"


def test_ban_create_auth_matrix(api, client, world):
    sid, srv, sid2, srv2, alice = world
    body = {"player": "alice", "reason": "x", "scope": sid}
    assert ban(client, {}, **body).status_code == 401
    assert ban(client, alice, **body).status_code == 403
    assert ban(client, srv, **body).status_code == 201  # own server
    assert ban(client, srv2, **body).status_code == 403  # other server
    assert ban(client, api.admin, **body).status_code == 201


@pytest.mark.parametrize("body, field", [
    ({"reason": "x"}, "player"),
    ({"player": "alice"}, "reason"),
    ({"player": "alice", "reason": ""}, "reason"),
    ({"player": "alice", "reason": "x" * 201}, "reason"),
    ({"player": "alice", "reason": "a\nb"}, "reason"),
    ({"player": "alice", "reason": "x", "duration": -1}, "duration"),
    ({"player": "alice", "reason": "x", "duration": "1h"}, "duration"),
    ({"player": "a", "reason": "x"}, "player"),
    ({"ip": "10.0.0.300", "reason": "x"}, "ip"),
    ({"ip": "not an address", "reason": "x"}, "ip"),
    ({"ip": "10.0.0.0/8", "reason": "x"}, "ip"),
    ({"ip": "2001:db8::/32", "reason": "x"}, "ip"),
    ({"player": "alice", "reason": "x", "scope": "Bad!"}, "scope"),
    ({"player": "alice", "reason": "x", "force": "yes"}, "force"),
    ({"player": "alice", "reason": "x", "extra": 1}, "extra"),
])
def test_ban_create_refuses_bad_input(api, client, world, body, field):
    resp = ban(client, api.admin, **body)
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["code"] == "invalid_input"
    assert resp.json["error"]["message"].startswith(field)


def test_unknown_player_or_scope_is_not_found(api, client, world):
    assert ban(client, api.admin, player="nobody", reason="x").status_code == 404
    resp = ban(client, api.admin, player="alice", reason="x", scope="nosuchserver")
    assert resp.status_code == 404 and "nosuchserver" in resp.json["error"]["message"]


def test_a_range_too_wide_needs_the_admins_force(api, client, world):
    _, srv, _, _, _ = world
    resp = ban(client, api.admin, ip="10.0.0.0/8", reason="x")
    assert resp.status_code == 400 and "force" in resp.json["error"]["message"]
    resp = ban(client, api.admin, ip="10.0.0.0/8", reason="x", force=True)
    assert resp.status_code == 201 and resp.json["ip"] == "10.0.0.0/8"
    assert ban(client, srv, ip="10.0.0.0/8", reason="x", force=True).status_code == 403
    assert ban(client, api.admin, ip="2001:db8::/47", reason="x").status_code == 400
    assert ban(client, api.admin, ip="2001:db8::/48", reason="x").status_code == 201
    assert ban(client, api.admin, ip="10.1.0.0/16", reason="x").status_code == 201


def test_ip_is_normalised(api, client, world):
    assert ban(client, api.admin, ip="10.1.2.3/16", reason="x").json["ip"] == "10.1.0.0/16"
    assert ban(client, api.admin, ip="192.0.2.5", reason="x").json["ip"] == "192.0.2.5"
    assert ban(client, api.admin, ip="::ffff:192.0.2.9", reason="x").json["ip"] == "192.0.2.9"


# --- ban.check ----------------------------------------------------------------------------------
def test_a_cidr_ban_catches_an_address(api, client, world):
    sid, srv, _, _, _ = world
    made = ban(client, api.admin, ip="10.1.0.0/16", reason="proxy range").json
    assert check(client, srv, ip="10.1.200.3").json == {"banned": True, "bans": [made]}
    assert check(client, srv, ip="::ffff:10.1.0.1").json["banned"] is True
    for ip in ("10.2.0.1", "10.0.255.255", "11.1.0.1"):
        assert check(client, srv, ip=ip).json == {"banned": False, "bans": []}


def test_an_ipv6_range_catches_an_address(api, client, world):
    _, srv, _, _, _ = world
    ban(client, api.admin, ip="2001:db8:aa::/48", reason="x")
    assert check(client, srv, ip="2001:db8:aa:1::77").json["banned"] is True
    assert check(client, srv, ip="2001:db8:ab::1").json["banned"] is False


def test_a_ban_with_player_and_ip_applies_when_either_matches(api, client, world):
    _, srv, _, _, _ = world
    made = ban(client, api.admin, player="alice", ip="192.0.2.0/24", reason="x").json
    assert check(client, srv, player="alice").json["bans"] == [made]
    assert check(client, srv, ip="192.0.2.77").json["bans"] == [made]
    assert check(client, srv, player="alice", ip="192.0.2.77").json["bans"] == [made]
    assert check(client, srv, player="bob", ip="198.51.100.1").json["banned"] is False


def test_check_lists_every_ban_that_applies_oldest_first(api, client, world, clock):
    _, srv, _, _, _ = world
    first = ban(client, api.admin, player="alice", reason="one").json
    clock.advance(1)
    second = ban(client, srv, ip="192.0.2.1", reason="two").json
    got = check(client, srv, player="alice", ip="192.0.2.1").json
    assert [b["id"] for b in got["bans"]] == [first["id"], second["id"]]


def test_ban_check_auth_and_validation(api, client, world):
    _, srv, _, _, alice = world
    assert check(client, {}, player="alice").status_code == 401
    assert check(client, alice, player="alice").status_code == 403
    assert check(client, api.admin, player="alice").status_code == 403
    for query in ({}, {"ip": "999.1.1.1"}, {"ip": "10.0.0.0/24"}, {"player": "x"}):
        resp = check(client, srv, **query)
        assert resp.status_code == 400 and resp.json["error"]["code"] == "invalid_input", query


@pytest.mark.skipif(on_cluster(), reason="counts one node: on a cluster the credential and "
                    "the check are on two nodes (tests/test_roundtrips.py counts those)")
def test_check_costs_one_round_trip_over_many_bans(redis_server, r, config):
    """The check is one command whatever the number of bans (bench/moderation.py times it)."""
    from shared.redis_conn import counting_client
    from wsgi import create_app

    client_r, counter = counting_client(redis_server.url, on_cluster())
    app = create_app(config, client_r).test_client()
    admin = {"Authorization": f"Bearer {config.admin_token}"}
    sid = app.post("/v1/servers", json={"name": "s"}, headers=admin).json
    srv = {"Authorization": f"Bearer {sid['key']}"}
    for i in range(300):
        ban(app, admin, ip=f"10.{i // 256}.{i % 256}.0/24", reason="x")
    counter.n = 0
    assert check(app, srv, player="alice", ip="10.0.7.9").json["banned"] is True
    assert counter.n == 1  # the check travels with the credential check


# --- expiry and enforcement ---------------------------------------------------------------------
def test_a_ban_that_expires_while_the_player_is_online(api, client, world, clock):
    sid, srv, sid2, srv2, alice = world
    made = ban(client, api.admin, player="alice", reason="spawn camping", duration=600).json
    assert client.get("/v1/players/alice").json["online"] is False  # taken offline
    resp = api.join(sid, srv, alice)
    assert resp.status_code == 403 and resp.json["error"]["code"] == "banned"
    message = resp.json["error"]["message"]
    assert "spawn camping" in message and bans.utc(made["expires_at"]) in message
    clock.advance(601)
    assert check(client, srv, player="alice").json == {"banned": False, "bans": []}
    assert api.heartbeat(sid, srv).status_code == 200
    assert api.join(sid, srv, alice).status_code == 200
    assert client.get("/v1/players/alice").json["online"] is True
    listed = client.get("/v1/bans?player=alice", headers=api.admin).json["bans"]
    assert listed[0]["id"] == made["id"] and listed[0]["active"] is False
    assert client.get("/v1/bans?active=1", headers=api.admin).json["bans"] == []


def test_a_permanent_ban_message_says_so(api, client, world):
    sid, srv, _, _, alice = world
    ban(client, api.admin, player="alice", reason="x")
    message = api.join(sid, srv, alice).json["error"]["message"]
    assert "permanently" in message


def test_join_refuses_a_banned_address_and_does_not_store_it(api, client, world, r):
    sid, srv, sid2, srv2, _ = world
    bob = api.player("bob")
    ban(client, api.admin, ip="203.0.113.0/24", reason="vpn abuse")
    resp = join_ip(api, sid2, srv2, bob, "203.0.113.50")
    assert resp.status_code == 403 and resp.json["error"]["code"] == "banned"
    assert "vpn abuse" in resp.json["error"]["message"]
    assert join_ip(api, sid2, srv2, bob, "198.51.100.4").status_code == 200
    assert "198.51.100.4" not in everything(r)  # never stored
    assert join_ip(api, sid2, srv2, bob, "not-an-ip").status_code == 400


def test_join_honours_the_scope(api, client, world):
    sid, srv, sid2, srv2, alice = world
    ban(client, srv2, player="alice", reason="x")
    assert api.join(sid2, srv2, alice).status_code == 403
    assert api.join(sid, srv, alice).status_code == 200


def test_a_lifted_ban_stops_applying_at_once(api, client, world):
    sid, srv, _, _, alice = world
    made = ban(client, api.admin, player="alice", ip="192.0.2.0/24", reason="x").json
    assert client.delete(f"/v1/bans/{made['id']}", headers=api.admin).status_code == 204
    assert check(client, srv, player="alice", ip="192.0.2.1").json["banned"] is False
    assert join_ip(api, sid, srv, alice, "192.0.2.1").status_code == 200


# --- ban.lift -------------------------------------------------------------------------------------
def test_lift_rules(api, client, world):
    sid, srv, sid2, srv2, alice = world
    own = ban(client, srv, player="alice", reason="x").json
    glob = ban(client, api.admin, player="alice", reason="x").json
    assert client.delete(f"/v1/bans/{own['id']}", headers={}).status_code == 401
    assert client.delete(f"/v1/bans/{own['id']}", headers=alice).status_code == 403
    resp = client.delete(f"/v1/bans/{own['id']}", headers=srv2)  # another server's ban
    assert resp.status_code == 403 and resp.json["error"]["code"] == "forbidden"
    assert client.delete(f"/v1/bans/{glob['id']}", headers=srv).status_code == 403
    assert client.delete(f"/v1/bans/{own['id']}", headers=srv).status_code == 204
    assert client.delete(f"/v1/bans/{own['id']}", headers=srv).status_code == 204  # again
    assert client.delete(f"/v1/bans/{glob['id']}?reason=appeal",
                         headers=api.admin).status_code == 204
    assert client.delete("/v1/bans/zzzzzzzzzzzz", headers=api.admin).status_code == 404
    assert client.delete("/v1/bans/BAD", headers=api.admin).status_code == 400
    history = client.get("/v1/bans", headers=api.admin).json["bans"]
    assert {b["id"]: (b["active"], b["lifted_by"]) for b in history} == {
        own["id"]: (False, sid), glob["id"]: (False, "admin")}
    assert all(b["lifted_at"] for b in history)


# --- ban.list -------------------------------------------------------------------------------------
def test_list_filters_and_pages(api, client, world, clock):
    sid, srv, sid2, srv2, alice = world
    api.player("bob")
    made = [ban(client, api.admin, player="alice", reason="a").json,
            ban(client, srv, player="bob", reason="b").json,
            ban(client, srv2, player="alice", reason="c", duration=10).json,
            ban(client, api.admin, ip="192.0.2.0/24", reason="d").json]
    ids = [b["id"] for b in made]
    listed = client.get("/v1/bans", headers=api.admin).json
    assert [b["id"] for b in listed["bans"]] == ids[::-1] and listed["next_cursor"] is None
    mine = client.get("/v1/bans", headers=srv).json["bans"]  # global + its own
    assert [b["id"] for b in mine] == [ids[3], ids[1], ids[0]]
    alices = client.get("/v1/bans?player=ALICE", headers=api.admin).json["bans"]
    assert [b["id"] for b in alices] == [ids[2], ids[0]]
    clock.advance(11)
    active = client.get("/v1/bans?active=1&player=alice", headers=api.admin).json["bans"]
    assert [b["id"] for b in active] == [ids[0]]
    page1 = client.get("/v1/bans?limit=3", headers=api.admin).json
    assert len(page1["bans"]) == 3 and page1["next_cursor"]
    page2 = client.get(f"/v1/bans?limit=3&cursor={page1['next_cursor']}",
                       headers=api.admin).json
    assert [b["id"] for b in page2["bans"]] == [ids[0]] and page2["next_cursor"] is None
    assert client.get("/v1/bans", headers={}).status_code == 401
    assert client.get("/v1/bans", headers=alice).status_code == 403
    assert client.get("/v1/bans?limit=0", headers=api.admin).status_code == 400
    assert client.get("/v1/bans?cursor=abc", headers=api.admin).status_code == 400


# --- live: inboxes -------------------------------------------------------------------------------
def test_every_server_in_scope_reads_the_ban_and_the_unban(api, client, world):
    sid, srv, sid2, srv2, _ = world
    made = ban(client, api.admin, player="alice", reason="aimbot").json
    for headers in (srv, srv2):
        (entry,) = client.get("/v1/messages", headers=headers).json["messages"]
        assert entry == {"id": entry["id"], "from": "", "to": "*", "type": "ban",
                         "body": "aimbot", "at": entry["at"], "ban": made}
    cursor = client.get("/v1/messages", headers=srv).json["cursor"]
    client.delete(f"/v1/bans/{made['id']}?reason=appeal", headers=api.admin)
    (entry,) = client.get(f"/v1/messages?cursor={cursor}", headers=srv).json["messages"]
    assert entry["type"] == "unban" and entry["ban"] == made and entry["body"] == "appeal"


def test_a_server_scoped_ban_reaches_that_server_only(api, client, world):
    sid, srv, sid2, srv2, _ = world
    made = ban(client, srv2, player="alice", reason="x").json
    assert client.get("/v1/messages", headers=srv).json["messages"] == []
    (entry,) = client.get("/v1/messages", headers=srv2).json["messages"]
    assert entry["to"] == sid2 and entry["ban"] == made


def test_servers_cannot_send_ban_types(api, client, world):
    sid, srv, sid2, _, _ = world
    for kind in ("ban", "unban"):
        resp = client.post("/v1/messages", json={"to": sid2, "body": "x", "type": kind},
                           headers=srv)
        assert resp.status_code == 400


# --- ordered steps and the worker ----------------------------------------------------------------
def test_a_push_left_undone_is_redone_by_the_worker_once(api, client, world, r, config):
    """A web process killed after storing a ban: the worker finishes the later steps, and a
    repeat of them appends nothing twice."""
    sid, srv, sid2, srv2, _ = world
    now = time.time()
    made = bans.new_ban("zzzzzzzzzzzz", "Alice", None, "left behind", "global", "admin",
                        int(now), None)
    assert bans.store(r, made, None, int(now * 1000) - 10_000)  # step 1 only, 10 s ago
    assert client.get("/v1/players/alice").json["online"] is True
    assert bans.due(r, "test", int(now * 1000), 5000)
    assert bans.redeliver(r, config, now) == 1
    assert client.get("/v1/players/alice").json["online"] is False
    assert r.zcard(keys.ban_outbox()) == 0
    bans.announce(r, config, "ban", made, now)  # a retry of the same steps
    for headers in (srv, srv2):
        entries = client.get("/v1/messages", headers=headers).json["messages"]
        assert [e["ban"]["id"] for e in entries] == [made["id"]]
    assert not bans.due(r, "test", int(now * 1000), 5000)


def test_a_late_copy_cannot_bring_back_a_lifted_ban(api, client, world, r, config):
    sid, srv, _, _, alice = world
    made = ban(client, api.admin, player="alice", reason="x").json
    client.delete(f"/v1/bans/{made['id']}", headers=api.admin)
    bans.announce(r, config, "ban", made, time.time())  # a stalled process's step 2, late
    assert api.join(sid, srv, alice).status_code == 200


def test_the_worker_job_prunes_expired_bans(api, client, world, r, config, monkeypatch):
    from worker import jobs

    made = ban(client, api.admin, ip="192.0.2.0/24", reason="x", duration=1).json
    field = bans.net_field(bans.network("192.0.2.0/24"))
    assert field == "n4:c0000200/24" and r.hexists(keys.ban_index(), field)
    monkeypatch.setattr(jobs, "_env", lambda: (r, config))
    monkeypatch.setattr(time, "time", lambda: made["expires_at"] + 1.0)
    assert jobs.ban_job_due(r, "test", 5000)
    jobs.ban_outbox()
    assert not r.hexists(keys.ban_index(), field)
    assert r.zcard(keys.bans_expiring()) == 0


def test_candidates_cover_every_prefix_length():
    addr = bans.address("10.1.2.3")
    got = bans.candidates(addr)
    assert got[:2] == ["w4", "n4:0a010000/16"] and got[-1] == "n4:0a010203/32"
    assert len(got) == 18 and bans.net_field(bans.network("10.1.0.0/16")) in got
    assert len(bans.candidates(bans.address("2001:db8::1"))) == 82
    assert bans.net_field(bans.network("10.0.0.0/8")) == "w4"


def test_wide_ranges_catch_only_their_addresses(api, client, world):
    _, srv, _, _, _ = world
    made = ban(client, api.admin, ip="10.0.0.0/8", reason="x", force=True).json
    ban(client, api.admin, ip="2000::/16", reason="y", force=True)
    assert check(client, srv, ip="10.200.1.1").json["bans"] == [made]
    assert check(client, srv, ip="11.0.0.1").json["banned"] is False
    assert check(client, srv, ip="2000:1::1").json["banned"] is True
    assert check(client, srv, ip="2001:db8::1").json["banned"] is False
    assert check(client, srv, player="alice").json["banned"] is False



def test_an_address_ban_reaches_the_inboxes_too(api, client, world, r):
    sid, srv, sid2, srv2, _ = world
    made = ban(client, api.admin, ip="192.0.2.0/24", reason="x").json
    for headers in (srv, srv2):
        (entry,) = client.get("/v1/messages", headers=headers).json["messages"]
        assert entry["ban"] == made
    assert not r.zcard(keys.ban_outbox())


# --- live: relay pushes ---------------------------------------------------------------------------
def test_a_ban_over_http_is_pushed_by_two_relays_and_resumed_by_an_offline_server(
        redis_server, r, api, client):
    """Two servers on two relay processes get the ban as a push within 1 s of the answer; a
    third, offline meanwhile, gets it after RESUME from its last position."""
    ids = [server_creds(api, name) for name in ("a", "b", "c")]
    (one, port1), (two, port2) = spawn(redis_server.url), spawn(redis_server.url)
    try:
        a, b = authed(port1, ids[0][0], ids[0][1]), authed(port2, ids[1][0], ids[1][1])
        c = greeted(port2, "SERVER")
        cursor = c.cmd("AUTH", f"{ids[2][0]} {ids[2][1]}")["data"]["cursor"]
        c.close()  # offline from here
        api.player("alice")
        made = client.post("/v1/bans", json={"player": "alice", "reason": "aimbot"},
                           headers=api.admin)
        answered = time.monotonic()
        assert made.status_code == 201
        for conn in (a, b):
            conn.sock.settimeout(1.0)
            line = conn.line()
            assert time.monotonic() - answered < 1.0
            push = json.loads(line)
            assert list(push) == ["state", "event", "id", "data"]
            assert (push["state"], push["event"], push["data"]) == ("PUSH", "ban", made.json)
        lifted = client.delete(f"/v1/bans/{made.json['id']}", headers=api.admin)
        assert lifted.status_code == 204
        assert a.push()["event"] == "unban" and b.push()["data"] == made.json
        c = authed(port1, ids[2][0], ids[2][1])
        assert c.cmd("RESUME", cursor)["state"] == "OK"
        assert [(p["event"], p["data"]) for p in (c.push(), c.push())] == [
            ("ban", made.json), ("unban", made.json)]
        for conn in (a, b, c):
            conn.close()
    finally:
        for proc in (one, two):
            proc.terminate()
            proc.wait(5)


# --- the relay: a moderator on telnet -------------------------------------------------------------
def test_a_telnet_session_with_a_server_key_moderates_its_own_server(request, api, client):
    relay = request.getfixturevalue("start_relay")()
    sid, srv = api.server("Desert CTF")
    api.heartbeat(sid, srv)
    alice = api.player("alice")
    api.join(sid, srv, alice)
    client.put("/v1/clans/ACE", json={"name": "Aces High"}, headers=alice)
    c = greeted(relay.port, "HUMAN")

    def say(line: str) -> str:
        c.send(line)
        return c.upto(b"\r\n> ").decode()

    assert "Authenticated as server" in say(f"TOKEN {api.token(srv)}")
    out = say("BAN alice 3600 wall hack, twice")
    made = client.get("/v1/bans", headers=srv).json["bans"][0]
    assert out.startswith(f"ban {made['id']}: player alice on Desert CTF ({sid}), until ")
    assert "- wall hack, twice (by Desert CTF" in out
    assert made["reason"] == "wall hack, twice" and made["expires_at"] - made["at"] == 3600
    assert "BANNED" in say("ban.check alice") and f"ban {made['id']}" in say("BANS")
    assert say("CHECKNAME [ACE]zed").startswith("refused: carries the tag of clan ACE")
    assert say("CHECKNAME alice").startswith("refused: the registered name of alice")
    assert say("CHECKNAME zed").startswith("allowed")
    assert say("CLAN ace").startswith("[ACE] Aces High\r\nowner: alice\r\nmembers (1): alice")
    assert say("BAN alice 60 x").startswith("ban ")
    out = say("BAN alice 60")
    assert out.startswith("ERROR: reason: is required")
    assert say(f"UNBAN {made['id']} appeal accepted") == "OK\r\n> "
    assert "[lifted " in say("BANS alice")
    help_text = say("HELP ALL")
    for name, word in (("ban.create", "BAN"), ("ban.lift", "UNBAN"), ("ban.list", "BANS"),
                       ("name.check", "CHECKNAME"), ("clan.get", "CLAN")):
        assert f"  {name} (alias {word}) " in help_text, word
    c.close()


def test_the_ticker_queues_the_ban_job_only_when_due(redis_server, r, config):
    from rq import Queue

    from worker.ticker import Ticker

    ticker = Ticker(config, "test-ticker")
    queue = Queue("status", connection=ticker.conn)

    def queued() -> list[str]:
        return [job.func_name for job in queue.get_jobs()]

    ticker.tick()
    assert "shared.jobs.ban_outbox" not in queued()  # nothing due: nothing queued
    now = time.time()
    made = bans.new_ban("yyyyyyyyyyyy", None, bans.network("192.0.2.1"), "x", "global",
                        "admin", int(now), None)
    bans.store(r, made, bans.network("192.0.2.1"), int(now * 1000) - 60_000)
    ticker.tick()
    assert queued().count("shared.jobs.ban_outbox") == 1
    ticker.tick()  # the period's lock: once
    assert queued().count("shared.jobs.ban_outbox") == 1


def test_batch_runs_a_script_redis_does_not_hold_yet(r):
    from shared.redis_conn import Lua, batch

    r.script_flush()
    script = Lua("return 'ran ' .. ARGV[1]")
    assert batch(r, (script, [], ["once"]), lambda pipe: pipe.set("k", "v")) == ["ran once", True]
    assert batch(r, (script, [], ["again"])) == ["ran again"]


# --- IPv6 forms that carry an IPv4 address (README "Abuse budgets") -------------------------------
CARRIED = ["::198.51.100.20", "::ffff:198.51.100.20", "64:ff9b::c633:6414",
           "64:ff9b::198.51.100.20", "2002:c633:6414::1", "2002:c633:6414:7:8::9"]


@pytest.mark.parametrize("ip", CARRIED)
def test_an_ipv4_range_ban_catches_every_ipv6_form_of_the_address(api, client, world, ip):
    sid, srv, _, _, alice = world
    made = ban(client, api.admin, ip="198.51.100.0/24", reason="proxy range").json
    assert check(client, srv, ip=ip).json == {"banned": True, "bans": [made]}
    resp = client.post(f"/v1/servers/{sid}/players", headers=srv,
                       json={"token": api.token(alice), "ip": ip})
    assert resp.status_code == 403 and resp.json["error"]["code"] == "banned"


@pytest.mark.parametrize("ip", CARRIED)
def test_an_ipv4_address_ban_catches_every_ipv6_form(api, client, world, ip):
    _, srv, _, _, _ = world
    ban(client, api.admin, ip="198.51.100.20", reason="x")
    assert check(client, srv, ip=ip).json["banned"] is True
    assert check(client, srv, ip="198.51.100.21").json["banned"] is False


def test_a_ban_given_in_an_ipv6_form_is_the_ipv4_range(api, client, world):
    _, srv, _, _, _ = world
    assert ban(client, api.admin, ip="2002:c633:6400::/40", reason="x").json["ip"] \
        == "198.51.100.0/24"
    assert ban(client, api.admin, ip="64:ff9b::203.0.113.7", reason="x").json["ip"] \
        == "203.0.113.7"
    assert check(client, srv, ip="198.51.100.99").json["banned"] is True
    assert check(client, srv, ip="::203.0.113.7").json["banned"] is True
    for ip in ("::1", "2001:db8::1", "2002:c633:6500::1"):
        assert check(client, srv, ip=ip).json["banned"] is False
