"""Clans (README "Moderation"): create, get, invite, accept, remove, delete, transfer; one clan per
player;
player.delete leaves the clan."""

from __future__ import annotations

import pytest

from shared import keys
from shared.storage import clans


@pytest.fixture
def people(api):
    return {name: api.player(name) for name in ("alice", "bob", "carol")}


def create(client, headers, tag="ACE", name="Aces High"):
    return client.put(f"/v1/clans/{tag}", json={"name": name}, headers=headers)


def invite(client, headers, who, tag="ACE"):
    return client.put(f"/v1/clans/{tag}/members/{who}", headers=headers)


def accept(client, headers, tag="ACE"):
    return client.post(f"/v1/clans/{tag}/join", headers=headers)


def members(client, tag="ACE"):
    return client.get(f"/v1/clans/{tag}").json["members"]


def join(client, people, owner, who, tag="ACE"):
    assert invite(client, people[owner], who, tag).status_code == 200
    assert accept(client, people[who], tag).status_code == 200


def test_create_then_get(client, people):
    resp = create(client, people["alice"])
    assert resp.status_code == 201
    body = resp.json
    assert body == {"tag": "ACE", "name": "Aces High", "owner": "alice", "members": ["alice"],
                    "created": body["created"]}
    assert client.get("/v1/clans/ace").json == body  # anyone, any case


def test_tag_rules_and_clan_exists(client, people):
    assert create(client, people["alice"], tag="A").status_code == 400
    assert create(client, people["alice"], tag="ABCDEFGH").status_code == 400
    assert create(client, people["alice"], tag="A|B").status_code == 400
    assert create(client, people["alice"], tag="A%5BB").status_code == 400
    assert create(client, people["alice"], name="").status_code == 400
    assert create(client, people["alice"], tag="ab").status_code == 201
    resp = create(client, people["bob"], tag="AB")
    assert resp.status_code == 409 and resp.json["error"]["code"] == "clan_exists"
    assert create(client, people["bob"], tag="ABCDEFG").status_code == 201
    assert client.get("/v1/clans/nope").status_code == 404


def test_a_player_is_in_at_most_one_clan(client, people, r):
    assert create(client, people["alice"]).status_code == 201
    resp = create(client, people["alice"], tag="TWO")
    assert resp.status_code == 409 and resp.json["error"]["code"] == "in_clan"
    assert client.get("/v1/clans/two").status_code == 404
    assert create(client, people["bob"], tag="BEE").status_code == 201
    assert invite(client, people["bob"], "alice", "BEE").status_code == 200
    resp = accept(client, people["alice"], "BEE")
    assert resp.status_code == 409 and resp.json["error"]["code"] == "in_clan"
    assert members(client, "BEE") == ["bob"]
    assert r.hget(keys.player("alice"), "clan") == "ace"


def test_clan_exists_leaves_the_player_free(client, people, r):
    assert create(client, people["alice"]).status_code == 201
    assert create(client, people["bob"]).status_code == 409
    assert r.hget(keys.player("bob"), "clan") is None  # the claim was undone
    assert create(client, people["bob"], tag="BEE").status_code == 201


def test_invite_accept_and_members_in_join_order(client, people):
    create(client, people["alice"])
    resp = invite(client, people["alice"], "BOB")
    assert resp.json == {"tag": "ACE", "player": "bob", "state": "invited"}
    assert members(client) == ["alice"]  # invited is not a member
    assert accept(client, people["bob"]).json == {"tag": "ACE", "player": "bob",
                                                  "state": "member"}
    assert accept(client, people["bob"]).status_code == 200  # twice: no change
    join(client, people, "alice", "carol")
    assert members(client) == ["alice", "bob", "carol"]
    assert invite(client, people["alice"], "bob").json["state"] == "member"


def test_invite_and_accept_errors(client, people):
    create(client, people["alice"])
    assert invite(client, people["bob"], "carol").status_code == 403  # not the owner
    assert invite(client, people["alice"], "nobody").status_code == 404
    assert invite(client, people["alice"], "bob", tag="NOPE").status_code == 404
    resp = accept(client, people["carol"])
    assert resp.status_code == 403  # not invited
    assert accept(client, people["carol"], tag="NOPE").status_code == 404
    assert members(client) == ["alice"]


def test_a_clan_is_full_at_clan_members_max(redis_server, r, clock, api):
    from tests.conftest import make_config
    from wsgi import create_app

    client = create_app(make_config(redis_server.url, clan_members_max=2), r,
                        clock=clock).test_client()
    people = {n: api.player(n) for n in ("alice", "bob", "carol")}
    create(client, people["alice"])
    join(client, people, "alice", "bob")
    resp = invite(client, people["alice"], "carol")
    assert resp.status_code == 409 and resp.json["error"]["code"] == "clan_full"


def test_remove_leave_and_their_rules(client, people):
    create(client, people["alice"])
    join(client, people, "alice", "bob")
    join(client, people, "alice", "carol")
    assert client.delete("/v1/clans/ACE/members/carol",
                         headers=people["bob"]).status_code == 403
    assert client.delete("/v1/clans/ACE/members/carol",
                         headers=people["alice"]).status_code == 204  # the owner removes
    assert client.delete("/v1/clans/ACE/members/bob",
                         headers=people["bob"]).status_code == 204  # a member leaves
    resp = client.delete("/v1/clans/ACE/members/alice", headers=people["alice"])
    assert resp.status_code == 409 and resp.json["error"]["code"] == "clan_owner"
    assert client.delete("/v1/clans/ACE/members/bob",
                         headers=people["alice"]).status_code == 404
    assert members(client) == ["alice"]
    # a member who left may found or join another clan at once
    assert create(client, people["bob"], tag="BEE").status_code == 201


def test_the_owner_withdraws_an_invitation(client, people):
    create(client, people["alice"])
    invite(client, people["alice"], "bob")
    assert client.delete("/v1/clans/ACE/members/bob",
                         headers=people["alice"]).status_code == 204
    assert accept(client, people["bob"]).status_code == 403


def test_delete_by_owner_or_admin(api, client, people):
    create(client, people["alice"])
    join(client, people, "alice", "bob")
    assert client.delete("/v1/clans/ACE", headers=people["bob"]).status_code == 403
    assert client.delete("/v1/clans/ACE", headers={}).status_code == 401
    sid, srv = api.server()
    assert client.delete("/v1/clans/ACE", headers=srv).status_code == 403
    assert client.delete("/v1/clans/ACE", headers=people["alice"]).status_code == 204
    assert client.get("/v1/clans/ACE").status_code == 404
    # the tag is free; the old members are in no clan
    assert create(client, people["carol"]).status_code == 201
    assert members(client) == ["carol"]
    assert create(client, people["bob"], tag="BEE").status_code == 201
    assert client.delete("/v1/clans/BEE?reason=offensive", headers=api.admin).status_code == 204
    entries = client.get("/v1/audit", headers=api.admin).json["entries"]
    assert [(e["op"], e["by"], e["target"], e["reason"]) for e in entries[:2]] == [
        ("clan.delete", "admin", "BEE", "offensive"), ("clan.delete", "player:alice", "ACE",
                                                         None)]


def test_transfer_by_the_admin(api, client, people):
    create(client, people["alice"])
    join(client, people, "alice", "bob")
    body = {"player": "bob", "reason": "dispute settled"}
    assert client.put("/v1/clans/ACE/owner", json=body, headers=people["alice"]).status_code \
        == 403
    resp = client.put("/v1/clans/ace/owner", json=body, headers=api.admin)
    assert resp.status_code == 200 and resp.json == {"tag": "ACE", "owner": "bob"}
    assert client.get("/v1/clans/ACE").json["owner"] == "bob"
    assert client.delete("/v1/clans/ACE/members/alice",
                         headers=people["alice"]).status_code == 204  # no longer the owner
    resp = client.put("/v1/clans/ACE/owner", json={"player": "carol"}, headers=api.admin)
    assert resp.status_code == 409 and resp.json["error"]["code"] == "not_member"
    resp = client.put("/v1/clans/ACE/owner", json={"player": "alice"}, headers=api.admin)
    assert resp.status_code == 409  # left: the account may still say ACE, the index does not
    assert client.put("/v1/clans/NOPE/owner", json={"player": "bob"},
                      headers=api.admin).status_code == 404
    assert client.put("/v1/clans/ACE/owner", json={"player": "nobody"},
                      headers=api.admin).status_code == 404
    entry = client.get("/v1/audit", headers=api.admin).json["entries"][0]
    assert (entry["op"], entry["target"], entry["reason"]) == (
        "clan.transfer", "ace player=bob", "dispute settled")


def test_player_delete_leaves_the_clan(api, client, people):
    create(client, people["alice"])
    join(client, people, "alice", "bob")
    join(client, people, "alice", "carol")
    assert client.delete("/v1/players/bob", headers=people["bob"]).status_code == 204
    assert members(client) == ["alice", "carol"]
    # an owner's deletion passes the clan to the member who joined earliest
    assert client.delete("/v1/players/alice", headers=api.admin).status_code == 204
    clan = client.get("/v1/clans/ACE").json
    assert (clan["owner"], clan["members"]) == ("carol", ["carol"])
    assert client.delete("/v1/players/carol", headers=api.admin).status_code == 204
    assert client.get("/v1/clans/ACE").status_code == 404  # nobody left: deleted


def test_a_name_registered_again_is_not_in_the_old_clan(api, client, people, r):
    create(client, people["alice"])
    join(client, people, "alice", "bob")
    client.delete("/v1/players/bob", headers=people["bob"])
    bob = api.player("bob")
    assert members(client) == ["alice"]
    assert create(client, bob, tag="BEE").status_code == 201


def test_an_invitation_does_not_survive_the_invitees_deletion(api, client, people, r):
    """A new "dave" cannot accept the invitation the deleted dave had, nor wear the tag."""
    create(client, people["alice"])
    dave = api.player("dave")
    assert invite(client, people["alice"], "dave").status_code == 200
    assert client.delete("/v1/players/dave", headers=dave).status_code == 204
    new_dave = api.player("dave")
    resp = accept(client, new_dave)
    assert resp.status_code == 403 and resp.json["error"]["code"] == "forbidden"
    assert members(client) == ["alice"]
    assert client.get("/v1/players/dave").json.get("clan") is None
    assert r.zscore(keys.clan_invites("ace"), "dave") is None  # the stale one is withdrawn
    # invited again, the new account joins
    join(client, {**people, "dave": new_dave}, "alice", "dave")
    assert members(client) == ["alice", "dave"]
    assert r.hlen(keys.clan_invite_ids("ace")) == 0


def clan_of(client, name):
    """player.get's ``clan``, or ``"absent"`` when the key is left out."""
    body = client.get(f"/v1/players/{name}").json
    assert set(body) - {"clan"} == {"id", "name", "created", "last_seen", "online", "server"}
    return body.get("clan", "absent")


def test_player_get_shows_the_clan_only_while_a_member(client, people):
    assert clan_of(client, "alice") == "absent"
    assert create(client, people["alice"], tag="AcE").status_code == 201
    assert clan_of(client, "ALICE") == "AcE"  # the owner is a member; the tag as founded
    assert invite(client, people["alice"], "bob").status_code == 200
    assert clan_of(client, "bob") == "absent"  # invited is not a member
    assert accept(client, people["bob"]).status_code == 200
    assert clan_of(client, "bob") == "AcE"
    assert client.delete("/v1/clans/ACE/members/bob",
                         headers=people["alice"]).status_code == 204
    assert clan_of(client, "bob") == "absent"  # removed: the account still names the clan
    join(client, people, "alice", "bob")
    assert client.delete("/v1/clans/ace", headers=people["alice"]).status_code == 204
    assert (clan_of(client, "alice"), clan_of(client, "bob")) == ("absent", "absent")
    # the tag founded again by another: the old members' accounts name it, its index does not
    assert create(client, people["carol"], tag="ACE").status_code == 201
    assert [clan_of(client, n) for n in ("alice", "bob", "carol")] == ["absent", "absent", "ACE"]


def test_player_get_shows_the_clan_and_where_they_play(api, client, people):
    sid, srv = api.server()
    api.heartbeat(sid, srv)
    assert api.join(sid, srv, people["alice"]).status_code == 200
    create(client, people["alice"])
    body = client.get("/v1/players/alice").json
    assert (body["online"], body["server"], body["clan"]) == (True, sid, "ACE")


def test_clan_auth_matrix(api, client, people):
    sid, srv = api.server()
    for headers, code in (({}, 401), (srv, 403), (api.admin, 403)):
        assert create(client, headers).status_code == code
        assert invite(client, headers, "bob").status_code == code
        assert accept(client, headers).status_code == code
        assert client.delete("/v1/clans/ACE/members/bob", headers=headers).status_code == code
    for headers, code in (({}, 401), (srv, 403), (people["alice"], 403)):
        assert client.put("/v1/clans/ACE/owner", json={"player": "bob"},
                          headers=headers).status_code == code
    create(client, people["alice"])
    for headers in ({}, srv, api.admin, people["bob"]):  # anyone reads a clan
        assert client.get("/v1/clans/ACE", headers=headers).json["owner"] == "alice"


def test_tags_in_nicknames():
    assert clans.tags_in("ACE|alice") == ["ace", "alice"]  # both sides may be a tag
    assert clans.tags_in("ACE|x") == ["ace"]
    assert clans.tags_in("x|ACE") == ["ace"]
    assert clans.tags_in("[ACE]x") == ["ace"]
    assert clans.tags_in("(Ace)x") == ["ace"]
    assert clans.tags_in("[ACE)x") == []
    assert clans.tags_in("plainname") == []
    assert clans.tags_in("ab|cd") == ["ab", "cd"]


def test_a_race_between_two_joins_leaves_the_player_in_one_clan(client, people, r, config):
    """The account's clan field is claimed compare-and-set: a create that read the account
    before another clan claimed it fails instead of moving the player, and is undone."""
    from shared.auth import Caller
    from shared.dispatch import Ctx, run
    from shared.errors import Conflict
    from shared.registry import load

    create(client, people["alice"])
    join(client, people, "alice", "bob")
    stale = Caller("player", "id", "bob", account={"clan": None})  # read before the accept
    with pytest.raises(Conflict) as err:
        run(load()["clan.create"], Ctx(r, config, stale), {"tag": "TWO", "name": "Two"})
    assert err.value.code == "in_clan"
    assert client.get("/v1/clans/TWO").status_code == 404
    assert members(client) == ["alice", "bob"] and r.hget(keys.player("bob"), "clan") == "ace"
