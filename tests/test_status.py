"""status.update / status.list / status.get and the status page."""

from __future__ import annotations


def test_heartbeat_lists_public_live_server(api, client):
    sid, srv = api.server("one")
    resp = api.heartbeat(sid, srv, name="Desert Fox", players=["a", "b c"])
    assert resp.status_code == 200
    listed = client.get("/v1/status").json["servers"]
    assert [(s["id"], s["name"], s["player_count"]) for s in listed] == [(sid, "Desert Fox", 2)]
    got = client.get(f"/v1/status/{sid}").json
    assert got["players"] == ["a", "b c"] and got["max_players"] == 16


def test_private_server_is_not_listed(api, client):
    sid, srv = api.server()
    api.heartbeat(sid, srv, public=False)
    assert client.get("/v1/status").json["servers"] == []
    assert client.get(f"/v1/status/{sid}").status_code == 404


def test_lapsed_heartbeat_hidden_without_sweep(api, client, clock, config):
    sid, srv = api.server()
    api.heartbeat(sid, srv)
    clock.advance(config.status_ttl + 1)
    assert client.get("/v1/status").json["servers"] == []
    assert client.get(f"/v1/status/{sid}").status_code == 404


def test_server_may_update_only_its_own_status(api):
    sid, _ = api.server("a")
    _, other = api.server("b")
    resp = api.heartbeat(sid, other)
    assert resp.status_code == 403
    assert resp.json["error"]["code"] == "forbidden"


def test_status_update_auth(api, client):
    sid, _ = api.server()
    assert api.heartbeat(sid, {}).status_code == 401
    assert api.heartbeat(sid, api.player()).status_code == 403
    assert api.heartbeat(sid, api.admin).status_code == 403


import pytest  # noqa: E402


@pytest.mark.parametrize("over,field", [
    ({"port": 0}, "port"), ({"port": "28763"}, "port"), ({"players": ["x" * 16]}, "players[0]"),
    ({"players": [""]}, "players[0]"), ({"players": ["p"] * 65}, "players"),
    ({"public": "yes"}, "public"), ({"name": ""}, "name"), ({"host": "a b"}, "host"),
    ({"max_players": -1}, "max_players"), ({"players": ["tab\there"]}, "players[0]"),
])
def test_status_update_validation(api, over, field):
    sid, srv = api.server()
    resp = api.heartbeat(sid, srv, **over)
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["message"].startswith(field)


def test_status_page_lists_servers_and_refreshes(api, client):
    sid, srv = api.server()
    api.heartbeat(sid, srv, name="<b>Evil</b>", players=["x"], map="ac_mines")
    page = client.get("/").get_data(as_text=True)
    assert 'http-equiv="refresh"' in page
    assert "&lt;b&gt;Evil&lt;/b&gt;" in page and "ac_mines" in page and "1/16" in page
    assert "ac.example.org:28763" in page


def test_trailing_newline_is_a_control_character(api):
    sid, srv = api.server()
    resp = api.heartbeat(sid, srv, name="Srv\n")
    assert resp.status_code == 400 and resp.json["error"]["message"].startswith("name")
