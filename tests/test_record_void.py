"""record.void (README "Moderation"): an admin removes a record from a ranking at once; audited."""

from __future__ import annotations

import pytest


@pytest.fixture
def board(api, client):
    """Board ctf with records alice 30, bob 20, carol 10, all online on one server."""
    sid, srv = api.server()
    api.heartbeat(sid, srv)
    assert client.put("/v1/boards/ctf", json={"order": "desc", "operator": "best"},
                      headers=api.admin).status_code == 201
    players = {}
    for name, score in (("alice", 30), ("bob", 20), ("carol", 10)):
        players[name] = api.player(name)
        api.join(sid, srv, players[name])
        assert client.post("/v1/boards/ctf/records", json={"player": name, "score": score},
                           headers=srv).status_code == 200
    return sid, srv, players


def void(client, headers, name="alice", reason="speedhack", board="ctf"):
    query = f"?reason={reason}" if reason is not None else ""
    return client.delete(f"/v1/boards/{board}/records/{name}{query}", headers=headers)


def test_void_removes_the_record_from_the_ranking_at_once(api, client, board):
    assert void(client, api.admin).status_code == 204
    top = client.get("/v1/boards/ctf/records").json["records"]
    assert [(r["rank"], r["player"]) for r in top] == [(1, "bob"), (2, "carol")]
    assert client.get("/v1/boards/ctf/records/alice").status_code == 404
    assert client.get("/v1/players/alice/records").json == {"records": []}
    (entry,) = client.get("/v1/audit", headers=api.admin).json["entries"][:1]
    assert (entry["op"], entry["target"], entry["reason"]) == ("record.void",
                                                               "ctf name=alice", "speedhack")


def test_a_voided_player_may_set_a_new_record(api, client, board):
    sid, srv, _ = board
    void(client, api.admin)
    resp = client.post("/v1/boards/ctf/records", json={"player": "alice", "score": 5},
                       headers=srv)
    assert resp.json["rank"] == 3


def test_void_errors(api, client, board):
    assert void(client, api.admin, name="dave").status_code == 404
    assert void(client, api.admin, board="nosuch").status_code == 404
    for reason in (None, "", "x" * 201):
        resp = void(client, api.admin, reason=reason)
        assert resp.status_code == 400 and resp.json["error"]["message"].startswith("reason")
    assert void(client, api.admin, name="a").status_code == 400


def test_void_auth_matrix(api, client, board):
    sid, srv, players = board
    assert void(client, {}).status_code == 401
    assert void(client, players["alice"]).status_code == 403
    assert void(client, srv).status_code == 403
    assert client.get("/v1/boards/ctf/records/alice").status_code == 200
