"""Abuse budgets (SPEC §16): moderation writes and registrations per server key, the ban
duration a server may give, the mail send budget per player, and blocked senders."""

from __future__ import annotations

import time

import pytest

from shared import keys
from tests.conftest import make_config


@pytest.fixture
def config(redis_server):
    return make_config(redis_server.url, mod_writes_per_server_minute=3,
                       register_limit_per_server_hour=2, mail_send_per_minute=3,
                       mail_send_per_day=5, mail_send_per_day_new_account=4,
                       mail_blocked_max=2, register_limit_per_ip_hour=0)


@pytest.fixture(autouse=True)
def minute_start(clock):
    """Every test starts one second into a clock minute: its fixed windows do not turn."""
    clock.advance(61 - time.time() % 60)


def ban(client, headers, **body):
    return client.post("/v1/bans", json={"reason": "spam", **body}, headers=headers)


def mail(client, headers, to="bob", body="hello", **extra):
    return client.post("/v1/mail", json={"to": to, "body": body, **extra}, headers=headers)


def refused(resp, most):
    assert resp.status_code == 429, resp.json
    assert resp.json["error"]["code"] == "rate_limited"
    assert 1 <= int(resp.headers["Retry-After"]) <= most
    return int(resp.headers["Retry-After"])


# --- moderation writes by a server key ------------------------------------------------------
def test_a_server_key_makes_at_most_n_moderation_writes_a_minute(api, client, clock):
    sid, srv = api.server("one")
    _, other = api.server("two")
    for name in ("p1", "p2"):
        client.post("/v1/players", json={"name": name, "password": "secret1"})
    first = ban(client, srv, player="p1")
    assert first.status_code == 201
    assert ban(client, srv, ip="198.51.100.7").status_code == 201
    assert client.delete(f"/v1/bans/{first.json['id']}", headers=srv).status_code == 204
    wait = refused(ban(client, srv, player="p2"), 60)  # the 4th write: create...
    assert wait == 59
    refused(client.delete(f"/v1/bans/{first.json['id']}", headers=srv), 60)  # ...or lift
    # another server key and the admin have budgets of their own (the admin none)
    assert ban(client, other, player="p2").status_code == 201
    for _ in range(5):
        assert ban(client, api.admin, player="p2", scope=sid).status_code == 201
    clock.advance(60)  # a new minute
    assert ban(client, srv, player="p2").status_code == 201


def test_a_server_ban_lasts_at_most_ban_server_max_seconds(api, client, config):
    _, srv = api.server("one")
    client.post("/v1/players", json={"name": "p1", "password": "secret1"})
    most = config.ban_server_max_seconds
    assert most == 90 * 86400
    forever = ban(client, srv, player="p1").json
    assert forever["expires_at"] == forever["at"] + most
    longer = ban(client, srv, player="p1", duration=most + 3600).json
    assert longer["expires_at"] == longer["at"] + most
    shorter = ban(client, srv, player="p1", duration=600).json
    assert shorter["expires_at"] == shorter["at"] + 600
    # only the admin bans for good
    assert ban(client, api.admin, player="p1").json["expires_at"] is None


def test_registrations_with_a_server_key_are_limited_per_hour(api, client):
    _, srv = api.server("one")
    _, other = api.server("two")
    for name in ("r1", "r2"):
        resp = client.post("/v1/players", json={"name": name, "password": "secret1"},
                           headers=srv)
        assert resp.status_code == 201
    resp = client.post("/v1/players", json={"name": "r3", "password": "secret1"}, headers=srv)
    refused(resp, 3600)
    assert client.post("/v1/players", json={"name": "r3", "password": "secret1"},
                       headers=other).status_code == 201


# --- mail send budget -------------------------------------------------------------------------
@pytest.fixture
def alice(api, clock):
    headers = api.player("Alice")
    clock.advance(2 * 3600)  # an account older than an hour, still the same minute offset
    return headers


@pytest.fixture
def bob(api):
    return api.player("Bob")


def test_mail_per_minute_then_429_and_the_next_minute_again(client, alice, bob, clock):
    for _ in range(3):
        assert mail(client, alice).status_code == 201
    assert refused(mail(client, alice), 60) == 59
    clock.advance(60)
    assert mail(client, alice).status_code == 201


def day_start(clock):
    """Move the clock one minute into a UTC day: the day windows do not turn in a test."""
    clock.advance(86400 - clock() % 86400 + 61)


def test_mail_per_day(api, client, alice, bob, clock):
    day_start(clock)
    for _ in range(5):
        assert mail(client, alice).status_code == 201
        clock.advance(60)
    day_end = (int(clock()) // 86400 + 1) * 86400
    wait = refused(mail(client, alice), 86400)
    assert wait == day_end - int(clock())
    clock.advance(wait + 1)
    assert mail(client, alice).status_code == 201


def test_a_new_account_has_a_smaller_day_budget_for_its_first_hour(api, client, bob, clock):
    day_start(clock)
    created = client.post("/v1/players", json={"name": "Young", "password": "secret1"}
                          ).json["created"]
    young = api.login("Young")
    for _ in range(3):
        assert mail(client, young).status_code == 201
    clock.advance(60)
    assert mail(client, young).status_code == 201  # 4 = MAIL_SEND_PER_DAY_NEW_ACCOUNT
    clock.advance(60)
    assert refused(mail(client, young), 3600) == created + 3600 - int(clock())
    clock.advance(3600)  # an hour old: the day budget (5) applies
    assert mail(client, young).status_code == 201


def test_refusals_are_decided_first_and_do_not_count(api, client, config, alice, bob, r):
    # a refused send (unknown recipient, full mailbox) is not counted
    for _ in range(5):
        assert mail(client, alice, to="nobody").status_code == 404
    r.hset(keys.mail_blocked("bob"), "alice", "Alice")
    for _ in range(5):
        assert mail(client, alice).json["error"]["code"] == "blocked"
    r.delete(keys.mail_blocked("bob"))
    for _ in range(3):
        assert mail(client, alice).status_code == 201
    refused(mail(client, alice), 60)
    # over budget, the recipient's refusal still answers first
    assert mail(client, alice, to="nobody").status_code == 404
    r.hset(keys.mail_blocked("bob"), "alice", "Alice")
    resp = mail(client, alice)
    assert resp.status_code == 403 and resp.json["error"]["code"] == "blocked"


def test_mailbox_full_and_too_many_unread_come_before_the_budget(redis_server, r, clock):
    from tests.conftest import Api
    from wsgi import create_app
    cfg = make_config(redis_server.url, mail_send_per_minute=2, mail_send_per_day=0,
                      mail_send_per_day_new_account=0, mailbox_max=3,
                      mail_unread_per_sender_max=2, register_limit_per_ip_hour=0)
    client = create_app(cfg, r, clock=clock).test_client()
    api = Api(client)
    alice, carol = api.player("Alice"), api.player("Carol")
    api.player("Bob")
    assert mail(client, alice).status_code == 201
    assert mail(client, alice).status_code == 201
    resp = mail(client, alice)  # over budget and over the unread cap: 409 first
    assert resp.status_code == 409 and resp.json["error"]["code"] == "too_many_unread"
    assert mail(client, carol).status_code == 201  # bob's mailbox is full now (3)
    resp = mail(client, carol)
    assert resp.status_code == 409 and resp.json["error"]["code"] == "mailbox_full"
    resp = mail(client, carol)
    assert resp.status_code == 409 and resp.json["error"]["code"] == "mailbox_full"
    # carol's refused sends did not count: one more mail elsewhere is within her 2
    assert mail(client, carol, to="alice").status_code == 201
    refused(mail(client, carol, to="alice"), 60)


def test_a_server_sending_for_a_player_spends_that_players_budget(api, client, alice, bob):
    sid, srv = api.server("one")
    assert api.heartbeat(sid, srv).status_code == 200
    assert api.join(sid, srv, alice).status_code == 200
    assert mail(client, alice).status_code == 201
    for _ in range(2):
        assert mail(client, srv, **{"from": "alice"}).status_code == 201
    refused(mail(client, srv, **{"from": "alice"}), 60)
    refused(mail(client, alice), 60)
    # another player online on the same server has a budget of their own
    assert api.join(sid, srv, bob).status_code == 200
    assert mail(client, srv, to="alice", **{"from": "bob"}).status_code == 201


# --- blocked senders --------------------------------------------------------------------------
def test_a_player_blocks_and_unblocks_a_sender(api, client, alice, bob):
    assert client.get("/v1/players/bob/blocked", headers=bob).json == {"blocked": []}
    resp = client.put("/v1/players/bob/blocked/ALICE", headers=bob)
    assert resp.status_code == 200 and resp.json == {"sender": "ALICE", "blocked": True}
    assert client.get("/v1/players/bob/blocked", headers=bob).json == {"blocked": ["ALICE"]}
    resp = mail(client, alice)
    assert resp.status_code == 403 and resp.json["error"]["code"] == "blocked"
    assert client.get("/v1/mail", headers=bob).json["mail"] == []
    # through a game server too
    sid, srv = api.server("one")
    assert api.heartbeat(sid, srv).status_code == 200
    assert api.join(sid, srv, alice).status_code == 200
    resp = mail(client, srv, **{"from": "alice"})
    assert resp.status_code == 403 and resp.json["error"]["code"] == "blocked"
    # others still get through, and alice may still mail others
    api.player("Carol")
    carol = api.login("Carol")
    assert mail(client, carol).status_code == 201
    assert mail(client, alice, to="carol").status_code == 201
    assert client.delete("/v1/players/bob/blocked/alice", headers=bob).status_code == 204
    assert client.delete("/v1/players/bob/blocked/alice", headers=bob).status_code == 204
    assert client.get("/v1/players/bob/blocked", headers=bob).json == {"blocked": []}
    assert mail(client, alice).status_code == 201


def test_only_the_player_edits_their_block_list_and_it_is_bounded(api, client, alice, bob):
    for method in ("put", "delete"):
        resp = getattr(client, method)("/v1/players/bob/blocked/carol", headers=alice)
        assert resp.status_code == 403
    assert client.get("/v1/players/bob/blocked", headers=alice).status_code == 403
    assert client.get("/v1/players/bob/blocked").status_code == 401
    assert client.put("/v1/players/bob/blocked/x1", headers=bob).status_code == 200
    assert client.put("/v1/players/bob/blocked/x2", headers=bob).status_code == 200
    resp = client.put("/v1/players/bob/blocked/x3", headers=bob)
    assert resp.status_code == 409 and resp.json["error"]["code"] == "too_many_blocked"
    assert client.put("/v1/players/bob/blocked/X2", headers=bob).status_code == 200  # again
    assert client.put("/v1/players/bob/blocked/bad name", headers=bob).status_code == 400
