"""board.create, record.submit / top / player / of_player."""

from __future__ import annotations

import pytest

from shared import keys
from shared.schema import MAX_SAFE_INT


class World:
    """A live server with helpers to create boards, put players online and submit."""

    def __init__(self, api, client):
        self.api, self.client = api, client
        self.sid, self.srv = api.server("one")
        assert api.heartbeat(self.sid, self.srv).status_code == 200

    def board(self, board="ctf.ac_desert", order="desc", operator="best"):
        resp = self.client.put(f"/v1/boards/{board}", json={"order": order, "operator": operator},
                               headers=self.api.admin)
        assert resp.status_code in (200, 201), resp.json
        return board

    def online(self, *names):
        for name in names:
            headers = self.api.player(name)
            assert self.api.join(self.sid, self.srv, headers).status_code == 200

    def submit(self, player, score, board="ctf.ac_desert", headers=None, **extra):
        return self.client.post(f"/v1/boards/{board}/records",
                                json={"player": player, "score": score, **extra},
                                headers=headers or self.srv)

    def top(self, board="ctf.ac_desert", **query):
        return self.client.get(f"/v1/boards/{board}/records", query_string=query)


@pytest.fixture
def w(api, client):
    return World(api, client)


# --- board.create ---------------------------------------------------------------------------
def test_board_create(client, api, r):
    resp = client.put("/v1/boards/ctf.ac_desert", json={"order": "desc", "operator": "best"},
                      headers=api.admin)
    assert resp.status_code == 201
    body = resp.json
    assert body["board"] == "ctf.ac_desert" and body["order"] == "desc"
    assert body["operator"] == "best" and isinstance(body["created"], int)
    again = client.put("/v1/boards/ctf.ac_desert", json={"order": "desc", "operator": "best"},
                       headers=api.admin)
    assert again.status_code == 200 and again.json == body
    assert r.hget(keys.board("ctf.ac_desert"), "order") == "desc"


@pytest.mark.parametrize("change", [{"order": "asc"}, {"operator": "incr"}])
def test_board_create_conflict(client, api, change):
    client.put("/v1/boards/b1", json={"order": "desc", "operator": "best"}, headers=api.admin)
    resp = client.put("/v1/boards/b1", json={"order": "desc", "operator": "best", **change},
                      headers=api.admin)
    assert resp.status_code == 409 and resp.json["error"]["code"] == "board_exists"


def test_board_create_auth(client, api):
    body = {"order": "asc", "operator": "set"}
    _, srv = api.server()
    assert client.put("/v1/boards/b", json=body).status_code == 401
    assert client.put("/v1/boards/b", json=body, headers=srv).status_code == 403
    assert client.put("/v1/boards/b", json=body, headers=api.player()).status_code == 403


@pytest.mark.parametrize("board,body,field", [
    ("b", {"order": "up", "operator": "best"}, "order"),
    ("b", {"order": "asc", "operator": "max"}, "operator"),
    ("b", {"operator": "best"}, "order"),
    ("b", {"order": "asc"}, "operator"),
    ("b", {"order": 1, "operator": "best"}, "order"),
    ("Caps", {"order": "asc", "operator": "best"}, "board"),
    ("a" * 65, {"order": "asc", "operator": "best"}, "board"),
    ("sp%20ace", {"order": "asc", "operator": "best"}, "board"),
])
def test_board_create_validation(client, api, board, body, field):
    resp = client.put(f"/v1/boards/{board}", json=body, headers=api.admin)
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["message"].startswith(field)


# --- record.submit --------------------------------------------------------------------------
def test_submit_best_desc(w, r):
    w.board()
    w.online("alice")
    resp = w.submit("Alice", 10, meta={"kills": 3})
    assert resp.status_code == 200, resp.json
    assert resp.json == {"rank": 1, "score": 10, "improved": True}
    assert w.submit("alice", 5).json == {"rank": 1, "score": 10, "improved": False}
    assert w.submit("alice", 12).json == {"rank": 1, "score": 12, "improved": True}
    rec = w.top().json["records"][0]
    assert rec["player"] == "alice" and rec["score"] == 12 and rec["meta"] is None
    assert rec["server"] == w.sid
    assert r.smembers(keys.player_boards("alice")) == {"ctf.ac_desert"}


def test_best_not_better_keeps_old_record_and_time(w, clock):
    w.board()
    w.online("alice")
    w.submit("alice", 10, meta="first")
    before = w.top().json["records"][0]
    clock.advance(5)
    assert w.submit("alice", 10, meta="second").json["improved"] is False
    assert w.top().json["records"][0] == before


def test_best_asc_keeps_lower(w):
    w.board("race", order="asc")
    w.online("alice")
    assert w.submit("alice", 100, board="race").json["improved"] is True
    assert w.submit("alice", 120, board="race").json == {"rank": 1, "score": 100,
                                                          "improved": False}
    assert w.submit("alice", 90, board="race").json == {"rank": 1, "score": 90, "improved": True}


def test_operator_set(w):
    w.board("lvl", operator="set")
    w.online("alice")
    w.submit("alice", 10, board="lvl")
    assert w.submit("alice", 3, board="lvl").json == {"rank": 1, "score": 3, "improved": False}
    assert w.submit("alice", 7, board="lvl").json == {"rank": 1, "score": 7, "improved": True}


def test_operator_incr(w):
    w.board("kills", operator="incr")
    w.online("alice")
    assert w.submit("alice", 5, board="kills").json["score"] == 5
    assert w.submit("alice", 3, board="kills").json == {"rank": 1, "score": 8, "improved": True}
    assert w.submit("alice", -2, board="kills").json == {"rank": 1, "score": 6,
                                                         "improved": False}


def test_incr_saturates(w):
    w.board("big", operator="incr")
    w.online("alice")
    w.submit("alice", MAX_SAFE_INT, board="big")
    assert w.submit("alice", MAX_SAFE_INT, board="big").json["score"] == MAX_SAFE_INT
    assert w.top("big").json["records"][0]["score"] == MAX_SAFE_INT


def test_operator_decr_floors_at_zero(w):
    w.board("lives", operator="decr")
    w.online("alice", "bob")
    assert w.submit("alice", 5, board="lives").json["score"] == 0  # counts from 0
    w.board("ammo", operator="decr")
    w.submit("bob", -10, board="ammo")  # decr by -10: 0 - (-10) = 10
    assert w.submit("bob", 4, board="ammo").json["score"] == 6
    assert w.submit("bob", 100, board="ammo").json == {"rank": 1, "score": 0, "improved": False}
    assert w.top("ammo").json["records"][0]["score"] == 0


def test_large_scores_exact(w):
    w.board("exact", operator="set")
    w.online("alice", "bob")
    assert w.submit("alice", MAX_SAFE_INT, board="exact").json["score"] == MAX_SAFE_INT
    assert w.submit("bob", -MAX_SAFE_INT, board="exact").json["score"] == -MAX_SAFE_INT
    scores = [rec["score"] for rec in w.top("exact").json["records"]]
    assert scores == [MAX_SAFE_INT, -MAX_SAFE_INT]


def test_submit_refused_when_player_on_another_server(w, api):
    w.board()
    sid2, srv2 = api.server("two")
    api.heartbeat(sid2, srv2)
    w.online("alice")
    resp = w.submit("alice", 1, headers=srv2)
    assert resp.status_code == 403 and resp.json["error"]["code"] == "forbidden"
    assert resp.json["error"]["message"] == "player alice is not online on this server"
    api.join(sid2, srv2, api.login("alice"))
    assert w.submit("alice", 1).status_code == 403
    assert w.submit("alice", 1, headers=srv2).status_code == 200


def test_submit_refused_when_offline_or_server_lapsed(w, api, client, clock, config):
    w.board()
    api.player("bob")
    assert w.submit("bob", 1).status_code == 403  # never joined
    w.online("alice")
    client.delete(f"/v1/servers/{w.sid}/players/alice", headers=w.srv)
    assert w.submit("alice", 1).status_code == 403  # left
    api.join(w.sid, w.srv, api.login("alice"))
    clock.advance(config.status_ttl + 1)
    assert w.submit("alice", 1).status_code == 403  # heartbeat lapsed
    api.heartbeat(w.sid, w.srv)
    assert w.submit("alice", 1).status_code == 200


def test_submit_unknown_board_or_player(w):
    w.online("alice")
    resp = w.submit("alice", 1, board="nope")
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"
    w.board()
    assert w.submit("ghost", 1).status_code == 404


def test_submit_auth(w, api):
    w.board()
    w.online("alice")
    assert w.submit("alice", 1, headers={"X": "y"}).status_code == 401
    assert w.submit("alice", 1, headers=api.login("alice")).status_code == 403
    assert w.submit("alice", 1, headers=api.admin).status_code == 403


@pytest.mark.parametrize("body,field,status", [
    ({"player": "alice"}, "score", 400),
    ({"score": 1}, "player", 400),
    ({"player": "alice", "score": "10"}, "score", 400),
    ({"player": "alice", "score": 1.5}, "score", 400),
    ({"player": "alice", "score": True}, "score", 400),
    ({"player": "alice", "score": 2**53}, "score", 400),
    ({"player": "alice", "score": -2**53}, "score", 400),
    ({"player": "a", "score": 1}, "player", 400),
    ({"player": "alice", "score": 1, "meta": "x" * 1100}, "meta", 413),
    ({"player": "alice", "score": 1, "rank": 1}, "rank", 400),
])
def test_submit_validation(w, body, field, status):
    w.board()
    w.online("alice")
    resp = w.client.post("/v1/boards/ctf.ac_desert/records", json=body, headers=w.srv)
    assert resp.status_code == status, resp.json
    assert resp.json["error"]["message"].startswith(field)


def test_submit_meta_limit_is_bytes_of_json(w):
    w.board()
    w.online("alice")
    assert w.submit("alice", 1, meta="x" * 1023).status_code == 413  # 1025 bytes as JSON
    assert w.submit("alice", 1, meta="x" * 1022).status_code == 200
    assert w.top().json["records"][0]["meta"] == "x" * 1022


def test_submit_idempotency_key(w):
    w.board("kills", operator="incr")
    w.online("alice")
    headers = {**w.srv, "Idempotency-Key": "k1"}
    first = w.submit("alice", 5, board="kills", headers=headers).json
    assert w.submit("alice", 5, board="kills", headers=headers).json == first
    assert w.top("kills").json["records"][0]["score"] == 5


def test_submit_meta_limit_follows_config(r, redis_server, clock):
    from tests.conftest import Api, make_config
    from wsgi import create_app

    app = create_app(make_config(redis_server.url, record_meta_max=16), r, clock=clock)
    w = World(Api(app.test_client()), app.test_client())
    w.board()
    w.online("alice")
    assert w.submit("alice", 1, meta="x" * 14).status_code == 200
    assert w.submit("alice", 1, meta="x" * 15).status_code == 413


# --- record.top -----------------------------------------------------------------------------
def test_top_orders_desc_and_asc_ties_earlier_first(w, clock):
    w.board("frags", order="desc")
    w.board("time", order="asc")
    w.online("aa", "bb", "cc", "dd")
    for name, score in [("bb", 5), ("aa", 9), ("dd", 5), ("cc", 1)]:
        w.submit(name, score, board="frags")
        w.submit(name, score, board="time")
        clock.advance(0.01)
    frags = w.top("frags").json
    assert [(x["rank"], x["player"], x["score"]) for x in frags["records"]] == [
        (1, "aa", 9), (2, "bb", 5), (3, "dd", 5), (4, "cc", 1)]
    assert frags["next_cursor"] is None
    time = w.top("time").json["records"]
    assert [(x["player"], x["score"]) for x in time] == [("cc", 1), ("bb", 5), ("dd", 5),
                                                         ("aa", 9)]
    rec = time[0]
    assert set(rec) == {"rank", "player", "score", "meta", "server", "at"}
    assert isinstance(rec["at"], float) and abs(rec["at"] - clock()) < 5


def test_tie_rank_moves_when_record_is_rewritten(w, clock):
    w.board("lvl", operator="set")
    w.online("aa", "bb")
    w.submit("aa", 5, board="lvl")
    clock.advance(0.01)
    w.submit("bb", 5, board="lvl")
    clock.advance(0.01)
    w.submit("aa", 4, board="lvl")
    clock.advance(0.01)
    w.submit("aa", 5, board="lvl")  # a new record, later than bb's
    assert [x["player"] for x in w.top("lvl").json["records"]] == ["bb", "aa"]


def test_top_pagination(w, clock):
    w.board()
    names = [f"p{i:02d}" for i in range(7)]
    w.online(*names)
    for i, name in enumerate(names):
        w.submit(name, 100 - i)
    page1 = w.top(limit=3).json
    assert [x["player"] for x in page1["records"]] == names[:3]
    page2 = w.top(limit=3, cursor=page1["next_cursor"]).json
    assert [(x["rank"], x["player"]) for x in page2["records"]] == [(4, "p03"), (5, "p04"),
                                                                     (6, "p05")]
    page3 = w.top(limit=3, cursor=page2["next_cursor"]).json
    assert [x["player"] for x in page3["records"]] == ["p06"] and page3["next_cursor"] is None
    exact = w.top(limit=7).json
    assert len(exact["records"]) == 7 and exact["next_cursor"] is None
    assert w.top().json["next_cursor"] is None and len(w.top().json["records"]) == 7
    assert w.top(cursor="500").json == {"records": [], "next_cursor": None}


def test_top_default_limit_is_10(w):
    w.board()
    names = [f"p{i:02d}" for i in range(11)]
    w.online(*names)
    for i, name in enumerate(names):
        w.submit(name, i)
    body = w.top().json
    assert len(body["records"]) == 10 and body["next_cursor"] == "10"


def test_top_empty_and_unknown_board(w, client):
    w.board()
    assert w.top().json == {"records": [], "next_cursor": None}
    resp = w.top("nope")
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"


def test_top_is_public(w, api):
    w.board()
    for headers in ({}, api.admin, w.srv, api.player("zed")):
        assert w.client.get("/v1/boards/ctf.ac_desert/records", headers=headers).status_code \
            == 200


@pytest.mark.parametrize("query,field", [
    ({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"cursor": "abc"}, "cursor"), ({"cursor": "-1"}, "cursor"),
])
def test_top_validation(w, query, field):
    w.board()
    resp = w.top(**query)
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["message"].startswith(field)


def test_top_bad_board_id(client):
    resp = client.get("/v1/boards/BAD/records")
    assert resp.status_code == 400 and resp.json["error"]["message"].startswith("board")


# --- record.player --------------------------------------------------------------------------
@pytest.fixture
def ten(w):
    """Board with p00 (score 100, rank 1) .. p09 (score 91, rank 10)."""
    w.board()
    names = [f"p{i:02d}" for i in range(10)]
    w.online(*names)
    for i, name in enumerate(names):
        w.submit(name, 100 - i, meta={"i": i})
    return w


def rank_of(w, name, **query):
    return w.client.get(f"/v1/boards/ctf.ac_desert/records/{name}", query_string=query)


def test_player_record(ten):
    body = rank_of(ten, "P04").json
    assert body == {"rank": 5, "player": "p04", "score": 96, "meta": {"i": 4},
                    "server": ten.sid, "at": body["at"], "around": []}


@pytest.mark.parametrize("name,around,ranks", [
    ("p04", 2, [3, 4, 6, 7]),
    ("p00", 2, [2, 3]),
    ("p09", 3, [7, 8, 9]),
    ("p01", 50, [1, *range(3, 11)]),
    ("p04", 0, []),
])
def test_player_around_lists_neighbours_each_side(ten, name, around, ranks):
    body = rank_of(ten, name, around=around).json
    assert [x["rank"] for x in body["around"]] == ranks
    assert [x["player"] for x in body["around"]] == [f"p{k - 1:02d}" for k in ranks]
    assert all(x["player"] != name for x in body["around"])  # the player is the top level


def test_player_no_record_or_unknown_board(ten):
    ten.online("zz")
    resp = rank_of(ten, "zz")
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"
    assert rank_of(ten, "nobody").status_code == 404
    resp = ten.client.get("/v1/boards/nope/records/p00")
    assert resp.status_code == 404 and "board" in resp.json["error"]["message"]


@pytest.mark.parametrize("query,field", [({"around": "51"}, "around"),
                                         ({"around": "-1"}, "around"),
                                         ({"around": "x"}, "around")])
def test_player_validation(ten, query, field):
    resp = rank_of(ten, "p00", **query)
    assert resp.status_code == 400 and resp.json["error"]["message"].startswith(field)
    resp = ten.client.get("/v1/boards/ctf.ac_desert/records/a")
    assert resp.status_code == 400 and resp.json["error"]["message"].startswith("name")


# --- record.of_player -----------------------------------------------------------------------
def test_of_player_lists_every_board(w):
    w.board("b.two")
    w.board("a.one", order="asc")
    w.board("c.none")
    w.online("alice", "bob")
    w.submit("bob", 50, board="b.two")
    w.submit("alice", 10, board="b.two", meta=[1])
    w.submit("alice", 7, board="a.one")
    body = w.client.get("/v1/players/ALICE/records").json
    assert body == {"records": [
        {"board": "a.one", "rank": 1, "score": 7, "meta": None, "server": w.sid,
         "at": body["records"][0]["at"]},
        {"board": "b.two", "rank": 2, "score": 10, "meta": [1], "server": w.sid,
         "at": body["records"][1]["at"]}]}


def test_of_player_empty_and_unknown(w, api):
    api.player("alice")
    assert w.client.get("/v1/players/alice/records").json == {"records": []}
    resp = w.client.get("/v1/players/nobody/records")
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"
    assert w.client.get("/v1/players/x/records").status_code == 400


def test_reads_survive_script_cache_flush(ten, r):
    r.script_flush()
    assert ten.top(limit=2).status_code == 200
    r.script_flush()
    assert ten.client.get("/v1/players/p00/records").json["records"][0]["rank"] == 1
    r.script_flush()
    assert ten.submit("p09", 200).json == {"rank": 1, "score": 200, "improved": True}
