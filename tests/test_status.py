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


def test_server_browser_lists_servers_escaped_and_refreshes(api, client):
    sid, srv = api.server()
    api.heartbeat(sid, srv, name="<b>Evil</b>", players=["x"], map="ac_mines")
    page = client.get("/").get_data(as_text=True)
    assert '<script src="/static/browser.js"' in page  # the live refresh (tests/test_web_pages)
    assert "&lt;b&gt;Evil&lt;/b&gt;" in page and "ac_mines" in page and "<b>1</b>/16" in page
    assert "assaultcube://ac.example.org:28763" in page


@pytest.mark.parametrize("field", ["name", "map", "mode", "version", "host", "players"])
@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\x80", "\x85", "\x9b", "\u061c",
                                  "\u200e", "\u200f", "\u2028", "\u2029", "\u202a", "\u202e",
                                  "\u2066", "\u2069"])
def test_heartbeat_text_refuses_control_and_bidi_characters(api, client, field, char):
    sid, srv = api.server()
    value = [f"a{char}b"] if field == "players" else f"a{char}b"
    resp = api.heartbeat(sid, srv, **{field: value})
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["code"] == "invalid_input"
    assert resp.json["error"]["message"].startswith("players[0]" if field == "players" else field)
    assert client.get(f"/v1/status/{sid}").status_code == 404  # nothing stored


def test_heartbeat_text_keeps_printable_unicode(api, client):
    sid, srv = api.server()
    beat = {"name": "Ünïcode ~ Server\u00a0★", "map": "ac_déserto", "mode": "ctf",
            "version": "1.3 β", "players": ["Zoë", "[TAG]x|y", "名前"]}
    assert api.heartbeat(sid, srv, **beat).status_code == 200
    got = client.get(f"/v1/status/{sid}").json
    assert {k: got[k] for k in beat} == beat


def test_more_players_than_max_players_is_refused(api, client):
    sid, srv = api.server()
    resp = api.heartbeat(sid, srv, players=["a", "b", "c"], max_players=2)
    assert resp.status_code == 400
    assert resp.json["error"] == {"code": "invalid_input",
                                  "message": "players: lists 3 players but max_players is 2"}
    assert client.get(f"/v1/status/{sid}").status_code == 404
    assert api.heartbeat(sid, srv, players=["a", "b"], max_players=2).status_code == 200
    assert api.heartbeat(sid, srv, players=[], max_players=0).status_code == 200


def test_trailing_newline_is_a_control_character(api):
    sid, srv = api.server()
    resp = api.heartbeat(sid, srv, name="Srv\n")
    assert resp.status_code == 400 and resp.json["error"]["message"].startswith("name")
