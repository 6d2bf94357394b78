"""Abuse budgets (README "Abuse budgets"): moderation writes and registrations per server key, the
ban
duration a server may give, the mail send budget per player, and blocked senders."""

from __future__ import annotations

import time

import pytest

from shared import keys
from shared.redis_conn import primaries
from shared.storage import bans
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


# --- ban.list pages through an index ----------------------------------------------------------
def hmgets(r) -> int:
    """HMGET calls made so far (scripts' included), on every primary."""
    return sum(int(node.info("commandstats").get("cmdstat_hmget", {}).get("calls", 0))
               for node in primaries(r))


def flood(r, scope, n, now, duration=None, first=0):
    """``n`` bans on addresses by ``scope``'s server, stored directly (no budget): their ids."""
    ids = []
    for i in range(first, first + n):
        net = bans.network(f"10.{i // 250}.{i % 250}.1")
        made = bans.new_ban(f"f{i:011d}", None, net, "flood", scope, scope, int(now), duration)
        assert bans.store(r, made, net, int(now * 1000))
        ids.append(made["id"])
    return ids


def listed(client, headers, **query):
    resp = client.get("/v1/bans", query_string=query, headers=headers)
    assert resp.status_code == 200, resp.json
    return [b["id"] for b in resp.json["bans"]], resp.json["next_cursor"]


def test_ban_list_looks_at_one_page_whatever_others_banned(api, client, r, clock):
    sid, srv = api.server("one")
    sid2, srv2 = api.server("two")
    now = clock()
    glob = [ban(client, api.admin, ip=f"192.0.2.{i}").json["id"] for i in range(3)]
    own = [ban(client, srv2, ip=f"198.51.100.{i}").json["id"] for i in range(2)]
    lifted = ban(client, srv2, ip="198.51.100.9").json["id"]
    assert client.delete(f"/v1/bans/{lifted}", headers=api.admin).status_code == 204
    flood(r, sid, 400, now)  # the newest 400 bans are another server's
    before = hmgets(r)
    got, cursor = listed(client, srv2, active=1, limit=10)
    assert hmgets(r) - before <= 10  # a page looked at, not the 400 others' bans
    assert got == own[::-1] + glob[::-1] and cursor is None
    got, cursor = listed(client, srv2, limit=3)  # all, merged newest first, paged
    assert got == [lifted, *own[::-1]] and cursor
    got, cursor = listed(client, srv2, limit=3, cursor=cursor)
    assert got == glob[::-1] and cursor is None
    # the admin's active page skips lifted and expired bans without scanning them
    expired = flood(r, sid2, 300, now - 100, duration=50, first=400)
    assert len(expired) == 300
    got, cursor = listed(client, api.admin, active=1, limit=5)
    assert got == [] and cursor  # a short page until the worker prunes: never a scan
    while bans.prune(r, now):  # the worker's job drops expired bans from the active lists
        pass
    before = hmgets(r)
    got, cursor = listed(client, api.admin, active=1, limit=5)
    assert hmgets(r) - before <= 5 and len(got) == 5 and cursor


def test_ban_list_active_filters_what_the_worker_has_not_pruned_yet(api, client, r, clock):
    sid, srv = api.server("one")
    keep = ban(client, srv, ip="192.0.2.1", duration=3600).json["id"]
    short = ban(client, srv, ip="192.0.2.2", duration=10).json["id"]
    assert listed(client, srv, active=1) == ([short, keep], None)
    clock.advance(11)
    assert listed(client, srv, active=1) == ([keep], None)
    assert listed(client, srv) == ([short, keep], None)
    bans.prune(r, clock())
    assert r.zrange(keys.bans_active(sid), 0, -1) == [keep]
    assert r.zrange(keys.bans_active(), 0, -1) == [keep]


def test_an_older_store_is_listed_while_the_worker_fills_its_indexes(api, client, r, clock):
    sid, srv = api.server("one")
    ids = [ban(client, api.admin, ip=f"192.0.2.{i}").json["id"] for i in range(3)]
    mine = ban(client, srv, ip="198.51.100.1").json["id"]
    assert client.delete(f"/v1/bans/{ids[0]}", headers=api.admin).status_code == 204
    # a store from before the indexes: none of them, no marker
    for key in (keys.bans_of_scope("global"), keys.bans_of_scope(sid), keys.bans_active(),
                keys.bans_active("global"), keys.bans_active(sid), keys.bans_lists_ready()):
        r.delete(key)
    assert listed(client, srv, active=1) == ([mine, ids[2], ids[1]], None)  # the history
    assert bans.due(r, "me", int(clock() * 1000), 1000)  # the worker's job is due
    assert bans.reindex(r, clock()) == 4
    assert r.exists(keys.bans_lists_ready())
    assert r.zrange(keys.bans_active(), 0, -1) == [ids[1], ids[2], mine]
    assert r.zrange(keys.bans_of_scope("global"), 0, -1) == ids
    assert listed(client, srv, active=1) == ([mine, ids[2], ids[1]], None)
    assert listed(client, api.admin, active=1, limit=2) == ([mine, ids[2]], listed(
        client, api.admin, limit=2)[1])


def test_the_block_list_is_in_the_export_and_goes_with_the_player(api, client, bob, r):
    assert client.put("/v1/players/bob/blocked/Mallory", headers=bob).status_code == 200
    assert client.get("/v1/players/bob/export", headers=bob).json["blocked"] == ["Mallory"]
    assert client.delete("/v1/players/bob", headers=bob).status_code == 204
    assert not r.exists(keys.mail_blocked("bob"))
