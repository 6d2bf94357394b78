"""The board and profile pages read in one pipeline what the operations read in sequence
(issue 23): the same answers as ``season.list`` + ``record.top`` / ``season.records`` and
``player.get`` + ``status.get`` + ``record.of_player`` + ``clan.get``, in fewer round trips."""

from __future__ import annotations

from typing import Any

import pytest

from shared import auth
from shared.dispatch import Ctx, run
from shared.errors import NotFound
from shared.redis_conn import counting_client, preload_scripts
from shared.registry import load
from shared.storage import records
from shared.web import reads
from tests.conftest import on_cluster


def op(r: Any, config: Any, clock: Any, opname: str, **args: Any) -> Any:
    ctx = Ctx(r, config, auth.ANONYMOUS, ip="", clock=clock, queue=r)
    return run(load()[opname], ctx, args).body


def world(api: Any) -> dict[str, Any]:
    """alice online on a public server, in clan ACE with bob; carol online on a private
    server; dave offline; records on two boards."""
    c = api.client
    made = {n: api.player(n) for n in ("alice", "bob", "carol", "dave")}
    pub, pub_h = api.server("pub")
    api.heartbeat(pub, pub_h, name="Public", players=["alice"])
    hid, hid_h = api.server("hid")
    api.heartbeat(hid, hid_h, name="Hidden", public=False, players=["carol"])
    assert api.join(pub, pub_h, made["alice"]).status_code == 200
    assert api.join(hid, hid_h, made["carol"]).status_code == 200
    assert c.put("/v1/clans/AcE", json={"name": "Aces"}, headers=made["alice"]).status_code == 201
    assert c.put("/v1/clans/ace/members/bob", headers=made["alice"]).status_code == 200
    assert c.post("/v1/clans/ace/join", headers=made["bob"]).status_code in (200, 201)
    for board in ("ctf.ac_desert", "tdm.ac_depot"):
        assert c.put(f"/v1/boards/{board}", json={"order": "desc", "operator": "best"},
                     headers=api.admin).status_code in (200, 201)
        for who, score in (("alice", 30), ("bob", 20)):
            srv = pub_h if who == "alice" else hid_h
            sid = pub if who == "alice" else hid
            if who == "bob":
                assert api.join(sid, srv, made["bob"]).status_code == 200
            resp = c.post(f"/v1/boards/{board}/records", headers=srv,
                          json={"player": who, "score": score})
            assert resp.status_code in (200, 201), resp.json
    return made


@pytest.mark.parametrize("name", ["alice", "bob", "carol", "dave"])
def test_profile_reads_answer_as_the_operations(api, r, config, clock, name):
    world(api)
    player, where, held, clan = reads.profile(r, name, clock(), config.status_ttl)
    assert player == op(r, config, clock, "player.get", name=name)
    assert held == op(r, config, clock, "record.of_player", name=name)["records"]
    if player["server"]:  # online on a public server (a private one is not named)
        assert where == op(r, config, clock, "status.get", id=player["server"])
    else:
        assert where is None
    if "clan" in player:
        assert clan == op(r, config, clock, "clan.get", tag=player["clan"])
    else:
        assert clan is None


def test_profile_of_nobody_is_not_found(r, config, clock):
    with pytest.raises(NotFound):
        reads.profile(r, "nobody", clock(), config.status_ttl)


def test_board_reads_answer_as_the_operations(api, r, config, clock):
    world(api)
    for board in ("ctf.ac_desert", "tdm.ac_depot"):
        listing, top = records.season_listing(r, board, clock(), config.seasons_kept,
                                              (None, 1, 1))
        assert listing == op(r, config, clock, "season.list", board=board)
        assert top == op(r, config, clock, "record.top", board=board, limit=1, cursor="1")
        _, past = records.season_listing(r, board, clock(), config.seasons_kept, (0, 0, 25))
        assert past == op(r, config, clock, "season.records", board=board, season=0, limit=25)
    for season in (1, 7):  # a board without reset has season 0 only
        with pytest.raises(NotFound):
            records.season_listing(r, "ctf.ac_desert", clock(), config.seasons_kept,
                                   (season, 0, 25))
    with pytest.raises(NotFound):
        records.season_listing(r, "no.board", clock(), config.seasons_kept, (None, 0, 25))


def test_board_and_profile_pages_take_one_or_two_round_trips(api, redis_server, config, clock):
    from wsgi import create_app

    world(api)
    rc, counter = counting_client(redis_server.url, cluster=on_cluster())
    client = create_app(config, rc, clock=clock).test_client()
    preload_scripts(rc)
    expected = {"/boards/ctf.ac_desert": 1, "/boards/ctf.ac_desert?cursor=1": 1,
                "/boards/ctf.ac_desert?season=0&cursor=1": 2,  # a season named: its page next
                "/players/alice": 3, "/players/carol": 2,
                "/players/dave": 1}  # no server, clan or record: the account alone
    for path, trips in expected.items():
        counter.n = 0
        assert client.get(path).status_code == 200, path
        if not on_cluster():  # a cluster pipeline costs a round trip per node it reaches
            assert counter.n == trips, (path, counter.n)
    rc.close()


def test_me_costs_what_the_profile_costs(api, redis_server, config, clock):
    """/me reads the profile's first round trip with the session check (accounts.viewer)."""
    from wsgi import create_app

    made = world(api)
    rc, counter = counting_client(redis_server.url, cluster=on_cluster())
    client = create_app(config, rc, clock=clock).test_client()
    preload_scripts(rc)
    for name, trips in (("alice", 3), ("carol", 2), ("dave", 1)):
        client.set_cookie("ssm_session", api.token(made[name]))
        counter.n = 0
        page = client.get("/me")
        assert page.status_code == 200, name
        assert f"<h1>{name}" in page.get_data(as_text=True), name
        if not on_cluster():  # a cluster pipeline costs a round trip per node it reaches
            assert counter.n == trips, (name, counter.n)
    rc.close()
