"""name.check (README "Moderation"): registered names and clan tags are protected on every
server."""

from __future__ import annotations

import pytest

from tests.conftest import on_cluster


@pytest.fixture
def setup(api, client):
    """Servers one (alice, bob online) and two (carol online); clan ACE owned by alice with
    bob a member. Returns (srv, srv2)."""
    sid, srv = api.server("one")
    sid2, srv2 = api.server("two")
    for s, h in ((sid, srv), (sid2, srv2)):
        api.heartbeat(s, h)
    people = {n: api.player(n) for n in ("Alice", "bob", "carol")}
    for name in ("Alice", "bob"):
        assert api.join(sid, srv, people[name]).status_code == 200
    assert api.join(sid2, srv2, people["carol"]).status_code == 200
    assert client.put("/v1/clans/ACE", json={"name": "Aces"},
                      headers=people["Alice"]).status_code == 201
    client.put("/v1/clans/ACE/members/bob", headers=people["Alice"])
    assert client.post("/v1/clans/ACE/join", headers=people["bob"]).status_code == 200
    return srv, srv2


def check(client, headers, nick, player=None):
    query = {"nick": nick, **({"player": player} if player else {})}
    resp = client.get("/v1/names/check", query_string=query, headers=headers)
    assert resp.status_code == 200, resp.json
    return resp.json


def test_a_free_name_is_allowed(client, setup):
    srv, _ = setup
    assert check(client, srv, "newbie") == {"allowed": True}
    assert check(client, srv, "newbie", "carol") == {"allowed": True}


def test_a_registered_name_with_its_owner_on_the_server(client, setup):
    srv, _ = setup
    assert check(client, srv, "alice", "alice") == {"allowed": True}
    assert check(client, srv, "ALICE", "Alice") == {"allowed": True}


def test_a_registered_name_with_its_owner_elsewhere(client, setup):
    srv, srv2 = setup
    refused = {"allowed": False, "reason": "name_registered", "owner": "Alice"}
    assert check(client, srv2, "alice", "alice") == refused  # alice is online on one only
    assert check(client, srv, "alice") == refused  # no player given
    assert check(client, srv, "aLiCe", "bob") == refused  # someone else


@pytest.mark.parametrize("nick", ["ACE|zed", "[ACE]zed", "zed|ACE", "(ACE)zed", "ace|zed",
                                  "[aCe]zed", "zed|ace", "(Ace)zed"])
def test_each_clan_tag_form_for_a_member_and_a_non_member(client, setup, nick):
    srv, srv2 = setup
    refused = {"allowed": False, "reason": "clan_tag", "clan": "ACE"}
    assert check(client, srv, nick, "bob") == {"allowed": True}  # a member, online here
    assert check(client, srv, nick, "alice") == {"allowed": True}  # the owner
    assert check(client, srv2, nick, "carol") == refused  # not a member
    assert check(client, srv, nick) == refused  # nobody logged in
    assert check(client, srv2, nick, "bob") == refused  # bob is not online there


def test_names_that_look_like_tags_but_are_not(client, setup):
    srv, _ = setup
    for nick in ("ACE", "ACEzed", "[ACE", "ACE]zed", "[ACE)zed", "z|ACEX", "[BEE]zed"):
        assert check(client, srv, nick) == {"allowed": True}, nick


def test_a_member_who_left_is_refused(client, setup, api):
    srv, _ = setup
    bob = api.login("bob")
    assert client.delete("/v1/clans/ACE/members/bob", headers=bob).status_code == 204
    assert check(client, srv, "[ACE]bob", "bob")["reason"] == "clan_tag"


def test_a_deleted_clan_frees_its_tag(client, setup, api):
    srv, _ = setup
    assert client.delete("/v1/clans/ACE", headers=api.admin).status_code == 204
    assert check(client, srv, "[ACE]zed") == {"allowed": True}


def test_a_registered_name_is_checked_before_the_tag(client, setup, api):
    srv, _ = setup
    api.player("ACE|x")
    assert check(client, srv, "ace|X", "bob") == {"allowed": False,
                                                  "reason": "name_registered", "owner": "ACE|x"}


def test_name_check_auth_and_validation(client, setup, api):
    srv, _ = setup
    bob = api.login("bob")
    for headers, code in (({}, 401), (bob, 403), (api.admin, 403)):
        resp = client.get("/v1/names/check?nick=x", headers=headers)
        assert resp.status_code == code
    for query in ("", "nick=", "nick=" + "x" * 16, "nick=a%0Ab", "nick=ok&player=a"):
        resp = client.get(f"/v1/names/check?{query}", headers=srv)
        assert resp.status_code == 400 and resp.json["error"]["code"] == "invalid_input", query


@pytest.mark.skipif(on_cluster(), reason="counts one node: on a cluster the credential and "
                    "the check are on two nodes (tests/test_roundtrips.py counts those)")
def test_one_round_trip_whatever_the_number_of_clans(redis_server, r, config):
    from shared.redis_conn import counting_client
    from shared.storage import clans
    from wsgi import create_app

    for i in range(2000):
        clans.CREATE(r, clans.group(f"t{i}"), [f"T{i}", "clan", "owner", 1_700_000_000_000])
    rc, counter = counting_client(redis_server.url, on_cluster())
    app = create_app(config, rc).test_client()
    admin = {"Authorization": f"Bearer {config.admin_token}"}
    key = app.post("/v1/servers", json={"name": "s"}, headers=admin).json["key"]
    counter.n = 0
    got = app.get("/v1/names/check?nick=[T77]x|T1999&player=xy",
                  headers={"Authorization": f"Bearer {key}"}).json
    assert got == {"allowed": False, "reason": "clan_tag", "clan": "T77"}
    assert counter.n == 1


# --- invisible characters and look-alikes (README "Abuse budgets") --------------------------------
@pytest.mark.parametrize("char", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad",
                                  "\u180e", "\u2063", "\u034f", "\ufe0f", "\U000e0041"])
def test_a_nick_with_an_invisible_character_is_refused(client, setup, char):
    srv, _ = setup
    resp = client.get("/v1/names/check", query_string={"nick": f"b{char}ob"}, headers=srv)
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["code"] == "invalid_input"
    assert resp.json["error"]["message"].startswith("nick:")


def test_every_format_character_is_refused_in_a_nick():
    import unicodedata

    from shared.schema import NICK_REFUSED

    missed = [f"U+{c:04X}" for c in range(0x110000)
              if unicodedata.category(chr(c)) == "Cf" and not NICK_REFUSED.match(chr(c))]
    assert missed == []


@pytest.mark.parametrize("nick", ["[ ACE]zed", "[ACE ]zed", "( A C E )zed", "ACE |zed",
                                  "zed| ace", "[ＡＣＥ]zed", "ＡＣＥ|zed", "[АСЕ]zed",
                                  "[ΑCΕ]zed", " [ACE]zed"])
def test_a_clan_tag_with_spaces_or_look_alike_letters_is_the_tag(client, setup, nick):
    srv, _ = setup
    assert check(client, srv, nick, "carol") == {"allowed": False, "reason": "clan_tag",
                                                 "clan": "ACE"}
    assert check(client, srv, nick, "bob") == {"allowed": True}  # a member wears it


@pytest.mark.parametrize("nick", ["bоb", "ｂｏｂ", "ΒOB", "bοb"])
def test_a_look_alike_of_a_registered_name_is_that_name(client, setup, nick):
    srv, srv2 = setup
    refused = {"allowed": False, "reason": "name_registered", "owner": "bob"}
    assert check(client, srv2, nick) == refused
    assert check(client, srv, nick, "bob") == {"allowed": True}  # bob himself
