"""mail.send / mail.list / mail.read / mail.delete / mail.unread_count."""

from __future__ import annotations

import dataclasses

import pytest
import redis
from rq import Queue
from rq.job import Job

from shared import keys, queues
from shared.redis_conn import scan_keys
from shared.storage import mail as mail_storage


def mail(client, headers, to="bob", body="hello", **extra):
    return client.post("/v1/mail", json={"to": to, "body": body, **extra}, headers=headers)


def queued(config):
    """Ids of the queued mail notice jobs (RQ reads with a bytes client)."""
    return Queue("mail", connection=redis.Redis.from_url(config.queue_url)).job_ids


@pytest.fixture
def alice(api):
    return api.player("Alice")


@pytest.fixture
def bob(api):
    return api.player("Bob")


def test_send_stores_mail_and_queues_one_notice(client, config, r, alice, bob, clock):
    resp = mail(client, alice, "BOB", "hi bob", subject="yo")
    assert resp.status_code == 201 and list(resp.json) == ["id"]
    mail_id = resp.json["id"]
    assert queued(config) == [queues.notice_job_id("bob", mail_id)]
    listed = client.get("/v1/mail", headers=bob).json
    assert listed == {"mail": [{"id": mail_id, "from": "Alice", "subject": "yo",
                                "at": pytest.approx(clock(), abs=2), "read": False}],
                      "next_cursor": None}
    assert client.get("/v1/mail/unread", headers=bob).json == {"unread": 1}
    assert client.get("/v1/mail", headers=alice).json["mail"] == []


def test_read_marks_read(client, alice, bob):
    mail_id = mail(client, alice, body="line 1\nline 2").json["id"]
    resp = client.get(f"/v1/mail/{mail_id}", headers=bob)
    assert resp.status_code == 200
    assert resp.json == {"id": mail_id, "from": "Alice", "subject": "",
                         "body": "line 1\nline 2", "at": resp.json["at"], "read": True}
    assert client.get("/v1/mail/unread", headers=bob).json == {"unread": 0}
    assert client.get("/v1/mail", headers=bob).json["mail"][0]["read"] is True
    assert client.get("/v1/mail?unread=1", headers=bob).json["mail"] == []


def test_others_cannot_read_or_delete(api, client, alice, bob):
    mail_id = mail(client, alice).json["id"]
    for h in (alice, api.player("carol")):
        assert client.get(f"/v1/mail/{mail_id}", headers=h).status_code == 404
        assert client.delete(f"/v1/mail/{mail_id}", headers=h).status_code == 404
    assert client.get(f"/v1/mail/{mail_id}", headers=bob).status_code == 200


def test_delete(client, r, alice, bob):
    mail_id = mail(client, alice).json["id"]
    assert client.delete(f"/v1/mail/{mail_id}", headers=bob).status_code == 204
    assert client.get(f"/v1/mail/{mail_id}", headers=bob).status_code == 404
    resp = client.delete(f"/v1/mail/{mail_id}", headers=bob)
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"
    assert client.get("/v1/mail/unread", headers=bob).json == {"unread": 0}
    assert not r.exists(keys.mail("bob", mail_id))


def test_list_newest_first_paged_and_unread_filter(client, alice, bob):
    ids = [mail(client, alice, subject=f"s{i}").json["id"] for i in range(5)]
    client.get(f"/v1/mail/{ids[3]}", headers=bob)
    page = client.get("/v1/mail?limit=2", headers=bob).json
    assert [m["id"] for m in page["mail"]] == [ids[4], ids[3]] and page["next_cursor"]
    page2 = client.get(f"/v1/mail?limit=2&cursor={page['next_cursor']}", headers=bob).json
    assert [m["id"] for m in page2["mail"]] == [ids[2], ids[1]]
    page3 = client.get(f"/v1/mail?limit=2&cursor={page2['next_cursor']}", headers=bob).json
    assert [m["id"] for m in page3["mail"]] == [ids[0]] and page3["next_cursor"] is None
    exact = client.get("/v1/mail?limit=5", headers=bob).json
    assert len(exact["mail"]) == 5 and exact["next_cursor"] is None
    unread = client.get("/v1/mail?unread=1", headers=bob).json["mail"]
    assert [m["id"] for m in unread] == [ids[4], ids[2], ids[1], ids[0]]
    assert client.get("/v1/mail", headers=bob).json["mail"][0]["subject"] == "s4"


def test_unread_route_is_not_a_mail_id(client, bob):
    assert client.get("/v1/mail/unread", headers=bob).json == {"unread": 0}
    assert client.delete("/v1/mail/unread", headers=bob).status_code == 404


def test_unknown_recipient_404_and_nothing_queued(client, config, alice):
    resp = mail(client, alice, "nobody")
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"
    assert queued(config) == []


def test_mailbox_full_drops_nothing(client, config, r, alice, bob):
    from wsgi import create_app

    small = create_app(dataclasses.replace(config, mailbox_max=3), r).test_client()
    ids = [mail(small, alice, body=f"m{i}").json["id"] for i in range(3)]
    resp = mail(small, alice, body="one too many")
    assert resp.status_code == 409 and resp.json["error"]["code"] == "mailbox_full"
    assert sorted(m["id"] for m in small.get("/v1/mail", headers=bob).json["mail"]) == sorted(ids)
    assert len(queued(config)) == 3
    assert len(scan_keys(r, keys.mail("bob", "*"))) == 3
    small.delete(f"/v1/mail/{ids[0]}", headers=bob)
    assert mail(small, alice).status_code == 201


def test_mailbox_cap_holds_under_a_race(r, config, alice, bob):
    """The cap is checked in the script that stores: a stale count cannot overfill."""
    fields = {"from": "Alice", "subject": "", "body": "x", "at": 1.0}
    q = redis.Redis.from_url(config.queue_url) if config.redis_cluster else r
    got = [mail_storage.store_with_notice(r, "bob", f"id{i}", fields, "alice", "", 0, 2,
                                          queue=q)[0] for i in range(3)]
    assert got == ["ok", "ok", "refused"]
    assert r.zcard(keys.mailbox("bob")) == 2 and len(queued(config)) == 2
    assert not q.exists(Job.key_for(queues.notice_job_id("bob", "id2")))


def test_idempotent_retry_stores_one_mail(client, config, r, alice, bob):
    h = {**alice, "Idempotency-Key": "mail-1"}
    first, again = mail(client, h), mail(client, h)
    assert first.status_code == again.status_code == 201 and first.json == again.json
    assert r.zcard(keys.mailbox("bob")) == 1 and len(queued(config)) == 1


def test_player_from_must_be_themselves(client, alice, bob):
    assert mail(client, alice, **{"from": "alice"}).status_code == 201
    resp = mail(client, alice, **{"from": "Bob"})
    assert resp.status_code == 403 and resp.json["error"]["code"] == "forbidden"


def test_self_mail_allowed(client, alice):
    assert mail(client, alice, "alice").status_code == 201
    assert client.get("/v1/mail/unread", headers=alice).json == {"unread": 1}


@pytest.fixture
def online(api, alice):
    """A live server with Alice online on it: (server id, server headers)."""
    sid, srv = api.server("home")
    assert api.heartbeat(sid, srv).status_code == 200
    assert api.join(sid, srv, alice).status_code == 200
    return sid, srv


def test_server_mails_for_online_player(client, config, online, bob):
    _, srv = online
    resp = mail(client, srv, body="gg", **{"from": "ALICE"})
    assert resp.status_code == 201
    [m] = client.get("/v1/mail", headers=bob).json["mail"]
    assert m["from"] == "Alice" and len(queued(config)) == 1


def test_server_needs_from(client, online, bob):
    _, srv = online
    resp = mail(client, srv)
    assert resp.status_code == 400 and resp.json["error"]["message"].startswith("from")


def test_server_may_not_mail_for_player_elsewhere(api, client, config, online, bob):
    sid, srv = online
    other, other_h = api.server("other")
    api.heartbeat(other, other_h)
    for who, headers in (("Alice", other_h), ("Bob", srv), ("ghost", srv)):
        resp = mail(client, headers, "bob", **{"from": who})
        assert resp.status_code == 403, who
        assert resp.json["error"]["code"] == "forbidden"
    assert queued(config) == []


def test_server_may_not_mail_when_not_live(client, clock, config, online, bob):
    _, srv = online
    clock.advance(config.status_ttl + 1)
    assert mail(client, srv, **{"from": "Alice"}).status_code == 403
    assert queued(config) == [] and client.get("/v1/mail", headers=bob).json["mail"] == []


def test_auth_rules(api, client, alice):
    mail_id = "abc"
    assert mail(client, {}).status_code == 401
    assert mail(client, api.admin).status_code == 403
    sid, srv = api.server()
    for method, url in (("get", "/v1/mail"), ("get", f"/v1/mail/{mail_id}"),
                        ("delete", f"/v1/mail/{mail_id}"), ("get", "/v1/mail/unread")):
        assert getattr(client, method)(url).status_code == 401
        assert getattr(client, method)(url, headers=srv).status_code == 403
        assert getattr(client, method)(url, headers=api.admin).status_code == 403


@pytest.mark.parametrize("body,field", [
    ({"to": "bob", "body": ""}, "body"),
    ({"to": "bob", "body": "x" * 2001}, "body"),
    ({"to": "bob", "body": "nul\x00"}, "body"),
    ({"to": "bob", "body": ["x"]}, "body"),
    ({"to": "bob"}, "body"),
    ({"to": "bob", "body": "x", "subject": "s" * 101}, "subject"),
    ({"to": "bob", "body": "x", "subject": "a\nb"}, "subject"),
    ({"to": "bob", "body": "x", "subject": "a\tb"}, "subject"),
    ({"to": "bob", "body": "x", "subject": "csi\x9b2J"}, "subject"),
    ({"to": "bob", "body": "x", "subject": "nel\x85"}, "subject"),
    ({"to": "bob", "body": "x", "subject": "evil\u202egpj.exe"}, "subject"),
    ({"to": "bob", "body": "x", "subject": "iso\u2066late"}, "subject"),
    ({"to": "bob", "body": "x", "subject": "mark\u200f"}, "subject"),
    ({"to": "bob", "body": "x", "subject": "line\u2028sep"}, "subject"),
    ({"to": "bob", "body": "c1\x80"}, "body"),
    ({"to": "bob", "body": "c1\x9f"}, "body"),
    ({"to": "b", "body": "x"}, "to"),
    ({"to": "bad name", "body": "x"}, "to"),
    ({"to": "x" * 16, "body": "x"}, "to"),
    ({"body": "x"}, "to"),
    ({"to": "bob", "body": "x", "from": "no way"}, "from"),
    ({"to": "bob", "body": "x", "cc": "carol"}, "cc"),
])
def test_send_validation(client, alice, bob, body, field):
    resp = client.post("/v1/mail", json=body, headers=alice)
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["code"] == "invalid_input"
    assert resp.json["error"]["message"].startswith(field)


@pytest.mark.parametrize("url,field", [
    ("/v1/mail?limit=0", "limit"), ("/v1/mail?limit=101", "limit"), ("/v1/mail?limit=x", "limit"),
    ("/v1/mail?cursor=abc", "cursor"), ("/v1/mail?cursor=-1", "cursor"),
    ("/v1/mail?unread=maybe", "unread"), ("/v1/mail/UPPER", "id"), ("/v1/mail/" + "a" * 33, "id"),
])
def test_read_validation(client, bob, url, field):
    resp = client.get(url, headers=bob)
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["message"].startswith(field)


def test_mail_text_rules_keep_ordinary_text(client, alice, bob):
    """Multi-line bodies keep tab and line breaks (and bidi text: SPEC refuses only C1 there);
    subjects keep any printable text, non-ASCII included."""
    body, subject = "line 1\r\nline 2\tend \u202e\u200f שלום", "Grüße ~\u00a0ok"
    mail_id = mail(client, alice, body=body, subject=subject).json["id"]
    got = client.get(f"/v1/mail/{mail_id}", headers=bob).json
    assert (got["body"], got["subject"]) == (body, subject)


def test_unread_mails_per_sender_are_capped(api, client, config, r, alice, bob):
    cap = config.mail_unread_per_sender_max
    assert cap == 20
    ids = [mail(client, alice, body=f"m{i}").json["id"] for i in range(cap)]
    resp = mail(client, alice, body="one too many")
    assert resp.status_code == 409 and resp.json["error"]["code"] == "too_many_unread"
    assert resp.json["error"]["message"] == (
        "bob has 20 unread mails from Alice already; wait until they read some")
    assert r.zcard(keys.mailbox("bob")) == cap and len(queued(config)) == cap
    assert mail(client, api.player("carol")).status_code == 201  # another sender gets through
    assert client.get(f"/v1/mail/{ids[0]}", headers=bob).status_code == 200  # read one
    assert mail(client, alice, body="after a read").status_code == 201
    assert mail(client, alice).json["error"]["code"] == "too_many_unread"
    assert client.delete(f"/v1/mail/{ids[1]}", headers=bob).status_code == 204  # delete one
    assert mail(client, alice, body="after a delete").status_code == 201
    assert mail(client, alice).json["error"]["code"] == "too_many_unread"
    assert client.delete(f"/v1/mail/{ids[0]}", headers=bob).status_code == 204  # a read one
    assert mail(client, alice).json["error"]["code"] == "too_many_unread"


def test_unread_cap_counts_mail_a_server_sent_for_the_player(client, config, r, online, bob):
    from wsgi import create_app

    small = create_app(dataclasses.replace(config, mail_unread_per_sender_max=2), r).test_client()
    _, srv = online
    assert mail(small, srv, **{"from": "alice"}).status_code == 201
    assert mail(small, srv, **{"from": "ALICE"}).status_code == 201
    resp = mail(small, srv, **{"from": "Alice"})
    assert resp.status_code == 409 and resp.json["error"]["code"] == "too_many_unread"


def test_unread_cap_follows_the_recipient_and_zero_turns_it_off(api, client, config, r, alice,
                                                                bob):
    from wsgi import create_app

    small = create_app(dataclasses.replace(config, mail_unread_per_sender_max=1), r).test_client()
    assert mail(small, alice).status_code == 201
    assert mail(small, alice).status_code == 409
    assert client.delete("/v1/players/bob", headers=bob).status_code == 204
    api.player("Bob")  # a new Bob: a new, empty mailbox
    assert mail(small, alice).status_code == 201
    off = create_app(dataclasses.replace(config, mail_unread_per_sender_max=0), r).test_client()
    assert all(mail(off, alice).status_code == 201 for _ in range(3))
