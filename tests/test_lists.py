"""board.list (anyone) and server.list (admin)."""

from __future__ import annotations

from shared import keys


def make_board(client, api, board, order="desc", operator="best"):
    resp = client.put(f"/v1/boards/{board}", json={"order": order, "operator": operator},
                      headers=api.admin)
    assert resp.status_code == 201, resp.json


def test_board_list_empty(client):
    resp = client.get("/v1/boards")
    assert resp.status_code == 200 and resp.json == {"boards": []}


def test_board_list_sorted_by_id_for_anyone(client, api):
    make_board(client, api, "tdm.ac_depot", "asc", "set")
    make_board(client, api, "ctf.ac_desert")
    make_board(client, api, "kills", "desc", "incr")
    resp = client.get("/v1/boards")
    assert resp.status_code == 200
    assert resp.json == {"boards": [
        {"board": "ctf.ac_desert", "order": "desc", "operator": "best"},
        {"board": "kills", "order": "desc", "operator": "incr"},
        {"board": "tdm.ac_depot", "order": "asc", "operator": "set"}]}
    assert client.get("/v1/boards", headers=api.player()).json == resp.json


def test_board_list_skips_index_entries_without_a_board(client, api, r):
    make_board(client, api, "real")
    r.sadd(keys.boards_index(), "half.created")  # a create that stopped after the index write
    assert [b["board"] for b in client.get("/v1/boards").json["boards"]] == ["real"]


def test_board_list_answers_repeated_and_refused_creates_once(client, api):
    make_board(client, api, "b1")
    assert client.put("/v1/boards/b1", json={"order": "desc", "operator": "best"},
                      headers=api.admin).status_code == 200
    assert client.put("/v1/boards/b1", json={"order": "asc", "operator": "best"},
                      headers=api.admin).status_code == 409
    assert client.get("/v1/boards").json["boards"] == [
        {"board": "b1", "order": "desc", "operator": "best"}]


def test_server_list_is_admin_only(client, api):
    _, srv = api.server()
    assert client.get("/v1/servers").status_code == 401
    assert client.get("/v1/servers", headers=srv).status_code == 403
    assert client.get("/v1/servers", headers=api.player()).status_code == 403


def test_server_list_oldest_first_without_keys(client, api, clock):
    first, _ = api.server("First")
    clock.advance(5)
    second, _ = api.server("Second")
    clock.advance(5)
    doomed, _ = api.server("Doomed")
    assert client.delete(f"/v1/servers/{doomed}", headers=api.admin).status_code == 204
    resp = client.get("/v1/servers", headers=api.admin)
    assert resp.status_code == 200
    servers = resp.json["servers"]
    assert [(s["id"], s["name"]) for s in servers] == [(first, "First"), (second, "Second")]
    assert all(set(s) == {"id", "name", "created"} for s in servers)
    assert servers[0]["created"] < servers[1]["created"]
