"""presence.join / presence.leave."""

from __future__ import annotations

import pytest
import redis
from rq import Queue

from shared import keys
from shared.redis_conn import scan_keys


def mail_jobs(queue_url) -> int:
    return Queue("mail", connection=redis.Redis.from_url(queue_url)).count


@pytest.fixture
def live(api):
    """A live server: (id, headers)."""
    sid, srv = api.server("one")
    assert api.heartbeat(sid, srv).status_code == 200
    return sid, srv


def test_join_puts_player_online(api, client, live, r):
    sid, srv = live
    alice = api.player("Alice")
    resp = api.join(sid, srv, alice)
    assert resp.status_code == 200, resp.json
    assert resp.json == {"player": {"id": resp.json["player"]["id"], "name": "Alice"},
                         "server": sid, "online": True}
    assert r.smembers(keys.server_players(sid)) == {"alice"}
    assert r.hget(keys.player("alice"), "server") == sid
    assert r.hget(keys.player("alice"), "last_seen")


def test_join_moves_player_between_servers(api, live, r):
    sid, srv = live
    sid2, srv2 = api.server("two")
    api.heartbeat(sid2, srv2)
    alice = api.player("alice")
    assert api.join(sid, srv, alice).status_code == 200
    assert api.join(sid2, srv2, alice).status_code == 200
    assert r.smembers(keys.server_players(sid)) == set()
    assert r.smembers(keys.server_players(sid2)) == {"alice"}
    assert r.hget(keys.player("alice"), "server") == sid2


def test_join_twice_on_same_server(api, live, r):
    sid, srv = live
    alice = api.player("alice")
    assert api.join(sid, srv, alice).status_code == 200
    assert api.join(sid, srv, alice).status_code == 200
    assert r.smembers(keys.server_players(sid)) == {"alice"}


def test_join_needs_live_server(api, clock, config):
    sid, srv = api.server()
    alice = api.player("alice")
    resp = api.join(sid, srv, alice)
    assert resp.status_code == 409 and resp.json["error"]["code"] == "server_not_live"
    api.heartbeat(sid, srv)
    assert api.join(sid, srv, alice).status_code == 200
    clock.advance(config.status_ttl + 1)
    resp = api.join(sid, srv, alice)
    assert resp.status_code == 409 and resp.json["error"]["code"] == "server_not_live"


@pytest.mark.parametrize("token", ["nonsense", "p.YWxpY2U.wrongsecret", "p.!!!.x", "s.abc.def"])
def test_join_bad_player_token(api, client, live, token):
    sid, srv = live
    api.player("alice")
    resp = client.post(f"/v1/servers/{sid}/players", json={"token": token}, headers=srv)
    assert resp.status_code == 401
    assert resp.json["error"]["code"] == "invalid_credentials"
    assert "player token" in resp.json["error"]["message"]


def test_join_expired_session(api, client, live, r):
    sid, srv = live
    alice = api.player("alice")
    for key in scan_keys(r, keys.player_session("alice", "*")):
        r.delete(key)
    resp = api.join(sid, srv, alice)
    assert resp.status_code == 401 and resp.json["error"]["code"] == "invalid_credentials"


@pytest.mark.parametrize("body,field", [({}, "token"), ({"token": 5}, "token"),
                                        ({"token": "x" * 513}, "token"),
                                        ({"token": "a", "extra": 1}, "extra")])
def test_join_validation(api, client, live, body, field):
    sid, srv = live
    resp = client.post(f"/v1/servers/{sid}/players", json=body, headers=srv)
    assert resp.status_code == 400
    assert resp.json["error"]["message"].startswith(field)


def test_join_auth(api, client, live):
    sid, srv = live
    alice = api.player("alice")
    _, other = api.server("other")
    assert api.join(sid, {}, alice).status_code == 401
    assert api.join(sid, alice, alice).status_code == 403
    assert api.join(sid, other, alice).status_code == 403
    assert api.join(sid, api.admin, alice).status_code == 403


def test_join_queues_pending_notice_only_with_unread_mail(api, live, r, queue_url):
    sid, srv = live
    other, other_h = api.server("other")
    api.heartbeat(other, other_h)
    alice = api.player("alice")
    assert api.join(sid, srv, alice).status_code == 200
    assert mail_jobs(queue_url) == 0  # no unread mail: no job
    r.zadd(keys.mailbox_unread("alice"), {"m1": 1})
    assert api.join(other, other_h, alice).status_code == 200  # arrives with unread mail
    queue = Queue("mail", connection=redis.Redis.from_url(queue_url))
    assert queue.count == 1
    job = queue.jobs[0]
    assert job.func_name == "shared.jobs.notify_pending" and job.args[:2] == ("alice", other)
    redis_now_ms = int(float(r.time()[0]) * 1000)
    assert abs(job.args[2] - redis_now_ms) < 5000  # the join time, by Redis' clock
    assert api.join(other, other_h, alice).status_code == 200  # already there: no reminder
    assert queue.count == 1


def test_join_not_live_queues_nothing(api, r, queue_url):
    sid, srv = api.server()
    alice = api.player("alice")
    r.zadd(keys.mailbox_unread("alice"), {"m1": 1})
    assert api.join(sid, srv, alice).status_code == 409
    assert mail_jobs(queue_url) == 0
    assert r.hget(keys.player("alice"), "server") is None


# --- leave ----------------------------------------------------------------------------------
def test_leave_takes_player_offline(api, client, live, r):
    sid, srv = live
    alice = api.player("alice")
    api.join(sid, srv, alice)
    resp = client.delete(f"/v1/servers/{sid}/players/ALICE", headers=srv)
    assert resp.status_code == 204
    assert r.hget(keys.player("alice"), "server") is None
    assert r.smembers(keys.server_players(sid)) == set()


def test_leave_cannot_log_off_from_another_server(api, client, live, r):
    sid, srv = live
    sid2, srv2 = api.server("two")
    alice = api.player("alice")
    api.join(sid, srv, alice)
    resp = client.delete(f"/v1/servers/{sid2}/players/alice", headers=srv2)
    assert resp.status_code == 204
    assert r.hget(keys.player("alice"), "server") == sid
    assert r.smembers(keys.server_players(sid)) == {"alice"}


def test_leave_unknown_player(api, client, live):
    sid, srv = live
    resp = client.delete(f"/v1/servers/{sid}/players/nobody", headers=srv)
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"


def test_leave_auth_and_validation(api, client, live):
    sid, srv = live
    alice = api.player("alice")
    _, other = api.server("other")
    url = f"/v1/servers/{sid}/players/alice"
    assert client.delete(url).status_code == 401
    assert client.delete(url, headers=alice).status_code == 403
    assert client.delete(url, headers=other).status_code == 403
    assert client.delete(url, headers=api.admin).status_code == 403
    resp = client.delete(f"/v1/servers/{sid}/players/a", headers=srv)
    assert resp.status_code == 400 and resp.json["error"]["message"].startswith("name")


def test_profile_shows_presence(api, client, live, clock, config):
    sid, srv = live
    alice = api.player("alice")
    api.join(sid, srv, alice)
    got = client.get("/v1/players/alice").json
    assert got["online"] is True and got["server"] == sid
    client.delete(f"/v1/servers/{sid}/players/alice", headers=srv)
    got = client.get("/v1/players/alice").json
    assert got["online"] is False and got["server"] is None and got["last_seen"]
    api.join(sid, srv, alice)
    clock.advance(config.status_ttl + 1)
    assert client.get("/v1/players/alice").json["online"] is False


# --- Idempotency-Key: a repeat never bypasses a check (README "Abuse budgets") --------------------
def _join_with_key(api, sid, srv, player, key, **body):
    return api.client.post(f"/v1/servers/{sid}/players", headers={**srv, "Idempotency-Key": key},
                           json={"token": api.token(player), **body})


def test_a_repeated_join_after_a_ban_is_refused_not_replayed(api, client, live):
    sid, srv = live
    alice = api.player("alice")
    assert _join_with_key(api, sid, srv, alice, "join-1").status_code == 200
    assert _join_with_key(api, sid, srv, alice, "join-1").status_code == 200  # a plain retry
    resp = client.post("/v1/bans", json={"player": "alice", "reason": "aimbot"},
                       headers=api.admin)
    assert resp.status_code == 201, resp.json
    resp = _join_with_key(api, sid, srv, alice, "join-1")
    assert resp.status_code == 403 and resp.json["error"]["code"] == "banned"


def test_a_repeated_join_with_an_address_ban_is_refused(api, client, live):
    sid, srv = live
    alice = api.player("alice")
    ip = {"ip": "203.0.113.9"}
    assert _join_with_key(api, sid, srv, alice, "join-2", **ip).status_code == 200
    resp = client.post("/v1/bans", json={"ip": "203.0.113.0/24", "reason": "flood"},
                       headers=api.admin)
    assert resp.status_code == 201, resp.json
    assert _join_with_key(api, sid, srv, alice, "join-2", **ip).status_code == 403


def test_the_same_key_with_another_players_token_is_another_request(api, live):
    sid, srv = live
    alice, bob = api.player("alice"), api.player("bob")
    assert _join_with_key(api, sid, srv, alice, "join-3").status_code == 200
    resp = _join_with_key(api, sid, srv, bob, "join-3")
    assert resp.status_code == 422 and resp.json["error"]["code"] == "idempotency_key_reused"
