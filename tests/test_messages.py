"""message.send / message.read / channel.join / channel.leave."""

from __future__ import annotations

import json
import threading
import time

import pytest

from shared import keys
from shared.storage import messages


def send(client, headers, to, body="hi", **extra):
    return client.post("/v1/messages", json={"to": to, "body": body, **extra}, headers=headers)


def inbox(client, headers, **query):
    resp = client.get("/v1/messages", query_string=query, headers=headers)
    assert resp.status_code == 200, resp.json
    return resp.json


def bodies(answer):
    return [m["body"] for m in answer["messages"]]


@pytest.fixture
def three(api):
    """Three servers: [(id, headers), ...]."""
    return [api.server(n) for n in ("a", "b", "c")]


def test_direct_message_shape(client, three, clock):
    (a, ha), (b, hb), _ = three
    resp = send(client, ha, b, "hello b", type="chat.team")
    assert resp.status_code == 202
    sid = resp.json["id"]
    assert list(resp.json) == ["id"]
    got = inbox(client, hb)
    [m] = got["messages"]
    assert m == {"id": sid, "from": a, "to": b, "type": "chat.team", "body": "hello b",
                 "at": pytest.approx(clock(), abs=2)}
    assert got["cursor"] == sid
    assert inbox(client, ha)["messages"] == []


def test_type_defaults_to_text_and_self_message_allowed(client, three):
    (a, ha), _, _ = three
    assert send(client, ha, a, "note to self").status_code == 202
    [m] = inbox(client, ha)["messages"]
    assert m["type"] == "text" and m["from"] == a == m["to"]


def test_broadcast_reaches_all_but_sender_with_one_id(client, three):
    (a, ha), (b, hb), (c, hc) = three
    sid = send(client, ha, "*", "all hands").json["id"]
    for h in (hb, hc):
        [m] = inbox(client, h)["messages"]
        assert (m["id"], m["to"], m["from"]) == (sid, "*", a)
    assert inbox(client, ha)["messages"] == []


def test_channel_reaches_members_but_sender(client, three):
    (a, ha), (b, hb), (c, hc) = three
    for sid, h in ((a, ha), (b, hb)):
        resp = client.put(f"/v1/servers/{sid}/channels/CTF", headers=h)
        assert resp.status_code == 200
        assert resp.json == {"channel": "ctf", "joined": True}
    assert send(client, ha, "#Ctf", "flag taken").status_code == 202
    [m] = inbox(client, hb)["messages"]
    assert m["to"] == "#ctf" and m["body"] == "flag taken"
    assert inbox(client, ha)["messages"] == [] and inbox(client, hc)["messages"] == []


def test_channel_leave_stops_delivery(client, r, three):
    (a, ha), (b, hb), _ = three
    client.put(f"/v1/servers/{b}/channels/duel", headers=hb)
    assert client.delete(f"/v1/servers/{b}/channels/duel", headers=hb).status_code == 204
    assert client.delete(f"/v1/servers/{b}/channels/duel", headers=hb).status_code == 204
    assert send(client, ha, "#duel").status_code == 202
    assert inbox(client, hb)["messages"] == []
    assert r.smembers(keys.server_channels(b)) == set() == r.smembers(keys.channel("duel"))


def test_channel_join_is_idempotent_and_capped(api, client, config, r):
    sid, h = api.server()
    for i in range(config.channels_per_server_max):
        assert client.put(f"/v1/servers/{sid}/channels/c{i}", headers=h).status_code == 200
    assert client.put(f"/v1/servers/{sid}/channels/c0", headers=h).status_code == 200
    resp = client.put(f"/v1/servers/{sid}/channels/one-more", headers=h)
    assert resp.status_code == 409 and resp.json["error"]["code"] == "too_many_channels"
    assert r.scard(keys.server_channels(sid)) == config.channels_per_server_max


def test_channel_auth(api, client, three):
    (a, ha), (b, hb), _ = three
    url = f"/v1/servers/{a}/channels/x"
    assert client.put(url).status_code == 401
    assert client.put(url, headers=hb).status_code == 403
    assert client.delete(url, headers=hb).status_code == 403
    assert client.put(url, headers=api.player()).status_code == 403
    assert client.put(url, headers=api.admin).status_code == 403
    assert client.put(f"/v1/servers/{a}/channels/bad%20name", headers=ha).status_code == 400


def test_unknown_server_is_404(client, three):
    (_, ha), _, _ = three
    resp = send(client, ha, "nosuchserver")
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"


def test_empty_channel_and_lonely_broadcast_still_accepted(api, client):
    _, h = api.server()
    assert send(client, h, "*").status_code == 202
    assert send(client, h, "#nobody").status_code == 202


def test_order_and_cursor_paging(client, three):
    (_, ha), (_, hb), _ = three
    ids = [send(client, ha, "*", f"m{i}").json["id"] for i in range(5)]
    first = inbox(client, hb, limit=2)
    assert bodies(first) == ["m0", "m1"] and first["cursor"] == ids[1]
    second = inbox(client, hb, cursor=first["cursor"], limit=2)
    assert bodies(second) == ["m2", "m3"]
    third = inbox(client, hb, cursor=second["cursor"])
    assert bodies(third) == ["m4"] and third["cursor"] == ids[4]
    empty = inbox(client, hb, cursor=third["cursor"])
    assert empty == {"messages": [], "cursor": ids[4]}
    assert bodies(inbox(client, hb, cursor="0")) == [f"m{i}" for i in range(5)]
    assert inbox(client, hb, cursor=ids[0].split("-")[0])["messages"][0]["id"] >= ids[0]


def test_no_cursor_and_nothing_pending(client, three):
    (_, ha), _, _ = three
    assert inbox(client, ha) == {"messages": [], "cursor": "0"}


def test_long_poll_returns_as_soon_as_a_message_arrives(client, app, three):
    (a, ha), (b, hb), _ = three
    other = app.test_client()  # Flask test clients are not shared across threads

    def later() -> None:
        time.sleep(0.5)
        send(other, ha, b, "wake up")

    thread = threading.Thread(target=later)
    start = time.monotonic()
    thread.start()
    got = inbox(client, hb, wait=10)
    elapsed = time.monotonic() - start
    thread.join()
    assert bodies(got) == ["wake up"]
    assert 0.3 < elapsed < 5


def test_long_poll_returns_empty_after_wait(client, three):
    (_, ha), _, _ = three
    start = time.monotonic()
    assert inbox(client, ha, wait=1) == {"messages": [], "cursor": "0"}
    assert 0.9 < time.monotonic() - start < 5


def test_long_poll_with_pending_answers_at_once(client, three):
    (a, ha), (b, hb), _ = three
    send(client, ha, b)
    start = time.monotonic()
    assert len(inbox(client, hb, wait=10)["messages"]) == 1
    assert time.monotonic() - start < 2


def test_long_poll_capped_by_config(r, three, config):
    import dataclasses

    from wsgi import create_app

    (_, ha), _, _ = three
    capped = create_app(dataclasses.replace(config, longpoll_max=0), r).test_client()
    start = time.monotonic()
    assert capped.get("/v1/messages?wait=30", headers=ha).json["messages"] == []
    assert time.monotonic() - start < 2


def test_worker_entries_are_returned_as_stored(client, r, config, three):
    (a, ha), _, _ = three
    notice = {"type": "mail", "player": "bob", "mail_id": "x1", "from": "al", "subject": "s",
              "unread": 1}
    sid, n = messages.deliver(r, config, a, "", "mail", notice)
    offline = {"type": "server_offline", "server": "zzz", "at": 1.5}
    messages.deliver(r, config, "*", "", "server_offline", offline)
    got = inbox(client, ha)["messages"]
    assert got[0] == {"id": sid, **notice} and got[1]["type"] == "server_offline"
    assert n == 1


def test_retention_keeps_recent_and_trims_old(r, config, three):
    import dataclasses

    (a, _), (b, _), _ = three
    small = dataclasses.replace(config, message_keep_count=3, message_keep_seconds=3600)
    for i in range(6):
        messages.deliver(r, small, b, a, "message", {"body": i})
    assert r.xlen(keys.inbox(b)) == 6  # young: all kept, whatever the count
    old = dataclasses.replace(small, message_keep_seconds=-3600)  # everything counts as aged
    messages.deliver(r, old, b, a, "message", {"body": 6})
    assert [json.loads(f["d"])["body"] for _, f in r.xrange(keys.inbox(b))] == [4, 5, 6]


def test_idempotent_send(client, three):
    (_, ha), (_, hb), _ = three
    h = {**ha, "Idempotency-Key": "k1"}
    first, again = send(client, h, "*", "once"), send(client, h, "*", "once")
    assert first.status_code == again.status_code == 202 and first.json == again.json
    assert bodies(inbox(client, hb)) == ["once"]


def test_auth_rules(api, client, three):
    (a, ha), _, _ = three
    player = api.player()
    assert send(client, {}, a).status_code == 401
    assert send(client, player, a).status_code == 403
    assert send(client, api.admin, a).status_code == 403
    assert client.get("/v1/messages").status_code == 401
    assert client.get("/v1/messages", headers=player).status_code == 403
    assert client.get("/v1/messages", headers=api.admin).status_code == 403


def test_each_server_reads_only_its_own_inbox(client, three):
    (a, ha), (b, hb), (c, hc) = three
    send(client, ha, b, "for b only")
    assert inbox(client, hc)["messages"] == [] and inbox(client, ha)["messages"] == []
    resp = client.get("/v1/messages", query_string={"to": b}, headers=hc)
    assert resp.json["messages"] == []  # unknown query params are ignored, never a way in


@pytest.mark.parametrize("body,field", [
    ({"to": "a", "body": "x" * 1025}, "body"),
    ({"to": "a", "body": 5}, "body"),
    ({"to": "a", "body": "bell\x07"}, "body"),
    ({"to": "Bad Id", "body": "x"}, "to"),
    ({"to": "#", "body": "x"}, "to"),
    ({"to": "#has space", "body": "x"}, "to"),
    ({"to": "**", "body": "x"}, "to"),
    ({"body": "x"}, "to"),
    ({"to": "a"}, "body"),
    ({"to": "a", "body": "x", "type": "Chat"}, "type"),
    ({"to": "a", "body": "x", "type": "t" * 33}, "type"),
    ({"to": "a", "body": "x", "extra": 1}, "extra"),
])
def test_send_validation(client, three, body, field):
    (_, ha), _, _ = three
    resp = client.post("/v1/messages", json=body, headers=ha)
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["code"] == "invalid_input"
    assert resp.json["error"]["message"].startswith(field)


def test_multiline_body_accepted(client, three):
    (_, ha), (b, hb), _ = three
    assert send(client, ha, b, "line 1\nline 2\ttab\r\n").status_code == 202
    assert bodies(inbox(client, hb)) == ["line 1\nline 2\ttab\r\n"]


@pytest.mark.parametrize("char", ["\x80", "\x85", "\x9b", "\x9f"])
def test_body_refuses_c1_controls(client, three, char):
    (_, ha), (b, hb), _ = three
    resp = send(client, ha, b, f"look{char}[2Jhere")
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == "invalid_input"
    assert resp.json["error"]["message"].startswith(f"body: must not contain U+{ord(char):04X}")
    assert inbox(client, hb)["messages"] == []


def test_body_keeps_text_next_to_the_c1_range(client, three):
    """U+007E and U+00A0 are the neighbours of the refused ranges; bidi marks are allowed in
    multi-line text (SPEC refuses only C1 there)."""
    (_, ha), (b, hb), _ = three
    text = "~\u00a0é\u200fשלום\u202eok"
    assert send(client, ha, b, text).status_code == 202
    assert bodies(inbox(client, hb)) == [text]


@pytest.mark.parametrize("kind", ["mail", "server_offline", "ban", "unban", "system",
                                  "systemx", "system.notice", "system:ban"])
def test_reserved_types_refused_and_nothing_written(client, r, three, kind):
    (_, ha), (b, hb), _ = three
    resp = send(client, ha, b, "fake", type=kind)
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == "invalid_input"
    want = f"type: {kind} is reserved for messages the backend sends"
    assert resp.json["error"]["message"] == want
    assert inbox(client, hb)["messages"] == [] and r.xlen(keys.message_ids()) == 0


@pytest.mark.parametrize("kind", ["System", "SYSTEM", "Mail"])
def test_types_are_lowercase_so_other_spellings_are_invalid(client, three, kind):
    (_, ha), (b, _), _ = three
    resp = send(client, ha, b, "fake", type=kind)
    assert resp.status_code == 400 and resp.json["error"]["message"].startswith("type:")


@pytest.mark.parametrize("kind", ["mails", "banner", "unbanned", "my_system", "sys", "chat"])
def test_types_near_the_reserved_ones_pass(client, three, kind):
    (_, ha), (b, hb), _ = three
    assert send(client, ha, b, "ok", type=kind).status_code == 202
    assert [m["type"] for m in inbox(client, hb)["messages"]] == [kind]


@pytest.mark.parametrize("query,field", [
    ({"cursor": "abc"}, "cursor"), ({"cursor": "1-2-3"}, "cursor"), ({"cursor": "-1"}, "cursor"),
    ({"cursor": "9" * 20}, "cursor"), ({"cursor": "$"}, "cursor"),
    ({"wait": "31"}, "wait"), ({"wait": "-1"}, "wait"), ({"wait": "x"}, "wait"),
    ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"),
])
def test_read_validation(client, three, query, field):
    (_, ha), _, _ = three
    resp = client.get("/v1/messages", query_string=query, headers=ha)
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["message"].startswith(field)
