"""The server browser's render cache, compression and Cache-Control (README "Abuse budgets").

The list is rendered once per version of the public list and filter (shared/web/pages.py);
these tests prove a cached list is never stale after something it shows changes, that the
list's ETag gives 304s, that pages and JSON answers are compressed, and that every answer to a
player, a server or the admin is ``private, no-store``.
"""

from __future__ import annotations

import gzip
import re
from typing import Any

import pytest

from shared import keys
from shared.storage import status
from shared.web import pages
from tests.conftest import Api


@pytest.fixture
def long_lived(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rendered list kept for as long as its version holds (no 10 s refresh), so only the
    version and the lapse rule can make the page show a change."""
    monkeypatch.setattr(pages, "AGE_REFRESH", 10_000.0)


def shown(client: Any, path: str = "/") -> list[str]:
    resp = client.get(path)
    assert resp.status_code == 200
    return re.findall(r'<span class="sname">([^<]*)</span>', resp.get_data(as_text=True))


def version(r: Any) -> int:
    return int(r.get(keys.status_version()) or 0)


def test_a_heartbeat_that_changes_the_list_shows_at_once(api, client, r, long_lived):
    sid, h = api.server()
    api.heartbeat(sid, h, name="Alpha", map="ac_desert")
    assert shown(client) == ["Alpha"]
    assert shown(client, "/fragments/servers") == ["Alpha"]
    for field, value in (("name", "Beta"), ("players", ["newcomer"]), ("map", "ac_depot")):
        before = version(r)
        api.heartbeat(sid, h, **{"name": "Beta", "map": "ac_depot", field: value})
        assert version(r) == before + 1, field
        page = client.get("/").get_data(as_text=True)
        assert "Beta" in page and (field != "players" or "newcomer" in page), field
        assert "ac_depot" in client.get("/fragments/servers").get_data(as_text=True)


def test_every_worker_sees_a_heartbeat_another_took(api, config, r, clock, long_lived):
    from wsgi import create_app

    one, two = (create_app(config, r, clock=clock).test_client() for _ in range(2))
    sid, h = api.server()
    api.heartbeat(sid, h, name="Alpha")
    assert shown(one) == shown(two) == ["Alpha"]
    Api(one).heartbeat(sid, h, name="Gamma")  # through the first worker
    assert shown(two) == ["Gamma"]


def test_a_repeated_heartbeat_keeps_the_rendered_list(api, client, r, long_lived):
    sid, h = api.server()
    api.heartbeat(sid, h, name="Alpha", players=["a"])
    first = client.get("/fragments/servers")
    before = version(r)
    api.heartbeat(sid, h, name="Alpha", players=["a"])  # only its time differs
    assert version(r) == before
    again = client.get("/fragments/servers", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_a_repeated_heartbeat_shows_its_time_within_the_refresh(api, client, clock):
    sid, h = api.server()
    api.heartbeat(sid, h, name="Alpha")
    stamp = re.compile(r'data-ts="([0-9.]+)"')
    first = float(stamp.search(client.get("/").get_data(as_text=True)).group(1))
    clock.advance(pages.AGE_REFRESH / 2)
    api.heartbeat(sid, h, name="Alpha")
    clock.advance(pages.AGE_REFRESH / 2 + 0.5)
    later = float(stamp.search(client.get("/").get_data(as_text=True)).group(1))
    assert later - first >= pages.AGE_REFRESH / 2


def test_the_etag_names_what_the_list_shows_not_when_it_was_rendered(api, client, clock):
    sid, h = api.server()
    api.heartbeat(sid, h, name="Alpha")
    etag = client.get("/fragments/servers").headers["ETag"]
    clock.advance(pages.AGE_REFRESH + 1)  # rendered again (ages move), nothing else changed
    again = client.get("/fragments/servers", headers={"If-None-Match": etag})
    assert again.status_code == 304
    api.heartbeat(sid, h, name="Alpha")  # a newer heartbeat time, shown after the refresh
    clock.advance(pages.AGE_REFRESH + 1)
    fresh = client.get("/fragments/servers", headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag


def test_an_expired_heartbeat_leaves_the_cached_list_at_once(api, client, clock, long_lived):
    old, old_h = api.server("old")
    api.heartbeat(old, old_h, name="Old")
    clock.advance(60)
    new, new_h = api.server("new")
    api.heartbeat(new, new_h, name="New")
    assert sorted(shown(client)) == ["New", "Old"]
    clock.advance(31)  # Old's heartbeat is 91 s old (STATUS_TTL 90); no sweep has run
    assert shown(client) == ["New"]
    assert shown(client, "/fragments/servers") == ["New"]
    api.heartbeat(old, old_h, name="Old")  # the same payload again: it is back
    assert sorted(shown(client)) == ["New", "Old"]


def test_the_sweep_bumps_the_version(api, config, r, client, long_lived):
    sid, h = api.server()
    api.heartbeat(sid, h, name="Alpha")
    assert shown(client) == ["Alpha"]
    r.zadd(keys.status_live(), {sid: 1000})  # lapsed long ago, by Redis' and the sweep's clock
    before = version(r)
    assert status.sweep(r, config, 10)[0] == sid
    assert version(r) == before + 1
    assert shown(client) == []


def test_a_deleted_server_leaves_the_cached_list_at_once(api, client, r, long_lived):
    sid, h = api.server()
    api.heartbeat(sid, h, name="Alpha")
    other, other_h = api.server("other")
    api.heartbeat(other, other_h, name="Other")
    assert sorted(shown(client)) == ["Alpha", "Other"]
    etag = client.get("/fragments/servers").headers["ETag"]
    assert client.delete(f"/v1/servers/{sid}", headers=api.admin).status_code == 204
    assert shown(client) == ["Other"]
    resp = client.get("/fragments/servers", headers={"If-None-Match": etag})
    assert resp.status_code == 200 and "Alpha" not in resp.get_data(as_text=True)


def test_filters_are_cached_apart(api, client, long_lived):
    a, ah = api.server("a")
    api.heartbeat(a, ah, name="Alpha", mode="ctf")
    b, bh = api.server("b")
    api.heartbeat(b, bh, name="Bravo", mode="tdm")
    assert shown(client, "/?mode=ctf") == ["Alpha"]
    assert shown(client, "/?mode=tdm") == ["Bravo"]
    assert shown(client, "/fragments/servers?mode=ctf") == ["Alpha"]
    assert shown(client, "/?mode=ctf") == ["Alpha"]


def test_ages_carry_their_timestamp(api, client, clock):
    sid, h = api.server()
    api.heartbeat(sid, h, name="Alpha")
    beat = clock()
    page = client.get("/").get_data(as_text=True)
    ts = float(re.search(r'class="num age"[^>]*data-ts="([0-9.]+)"', page).group(1))
    assert abs(ts - beat) < 2
    assert re.search(r'id="servers"[^>]*data-etag="W/&#34;[0-9a-f]+&#34;"', page)


def test_the_200_server_page_travels_in_under_20_kib(api, client):
    for i in range(200):
        sid, h = api.server(f"s{i}")
        api.heartbeat(sid, h, name=f"CTF ac_desert #{i}", host=f"ac{i // 50}.example.org",
                      port=28763 + 10 * (i % 50), players=[f"Frag{i:04d}{k}" for k in range(8)],
                      map=("ac_desert", "ac_depot", "ac_mines")[i % 3], version="1.3.0.2")
    plain = client.get("/")
    resp = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert resp.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(resp.data) == plain.data
    assert len(resp.data) < 20 * 1024, len(resp.data)
    assert plain.data.count(b'<tr class="server') == 200


def test_json_answers_are_compressed_above_a_small_size(api, client):
    for i in range(5):
        sid, h = api.server(f"s{i}")
        api.heartbeat(sid, h, name=f"Server {i}")
    resp = client.get("/v1/status", headers={"Accept-Encoding": "gzip"})
    assert resp.headers["Content-Encoding"] == "gzip"
    assert len(gzip.decompress(resp.data)) > 500
    small = client.get("/healthz", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers and small.json == {"ok": True}


# -- Cache-Control -----------------------------------------------------------------------

PUBLIC = "public, max-age=5"
PRIVATE = "private, no-store"


def vary(resp: Any) -> set[str]:
    return {v.strip().lower() for v in resp.headers.get("Vary", "").split(",")}


def test_public_data_to_an_anonymous_reader_may_be_cached(api, client):
    sid, h = api.server()
    api.heartbeat(sid, h)
    api.player("alice")
    for path in ("/", "/fragments/servers", "/players/alice", "/v1/status",
                 "/v1/players/alice", f"/v1/status/{sid}", "/static/style.css"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert resp.headers["Cache-Control"] == PUBLIC, path
        assert {"cookie", "authorization"} <= vary(resp), path


def test_answers_to_a_player_a_server_or_the_admin_are_no_store(api, client):
    sid, h = api.server()
    assert api.heartbeat(sid, h).headers["Cache-Control"] == PRIVATE
    alice = api.player("alice")
    bob = api.player("bob")
    login = client.post("/v1/sessions", json={"name": "alice", "password": "secret1"})
    assert login.status_code == 200 and "token" in login.json
    assert login.headers["Cache-Control"] == PRIVATE  # the token answer
    sent = client.post("/v1/mail", json={"to": "bob", "subject": "hi", "body": "hello"},
                       headers=alice)
    assert sent.status_code == 201, sent.json
    assert sent.headers["Cache-Control"] == PRIVATE
    inbox = client.get("/v1/mail", headers=bob)
    assert inbox.status_code == 200 and inbox.json["mail"], inbox.json
    assert inbox.headers["Cache-Control"] == PRIVATE
    mail = client.get(f"/v1/mail/{inbox.json['mail'][0]['id']}", headers=bob)
    assert mail.status_code == 200 and mail.headers["Cache-Control"] == PRIVATE
    # public data, but asked with a credential: the answer is to that caller
    for headers in (alice, h, api.admin):
        resp = client.get("/v1/status", headers=headers)
        assert resp.status_code == 200 and resp.headers["Cache-Control"] == PRIVATE
    assert client.get("/v1/servers", headers=api.admin).headers["Cache-Control"] == PRIVATE


def test_a_session_cookie_makes_every_page_no_store(api, client):
    sid, h = api.server()
    api.heartbeat(sid, h)
    client.set_cookie("ssm_session", "anything")
    for path in ("/", "/fragments/servers", "/v1/status", "/static/style.css"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert resp.headers["Cache-Control"] == PRIVATE, path
    client.delete_cookie("ssm_session")
    client.set_cookie("other", "1")  # some other cookie: still anonymous
    assert client.get("/").headers["Cache-Control"] == PUBLIC


def test_errors_probes_and_cookie_setting_answers_are_no_store(api, client, app):
    @app.get("/_test/sets-cookie")
    def sets_cookie() -> Any:
        from flask import make_response

        resp = make_response("x")
        resp.set_cookie("ssm_csrf", "token")
        return resp

    assert client.get("/_test/sets-cookie").headers["Cache-Control"] == PRIVATE
    assert client.get("/players/nobody").status_code == 404
    assert client.get("/players/nobody").headers["Cache-Control"] == PRIVATE
    assert client.get("/readyz").headers["Cache-Control"] == PRIVATE
    assert client.get("/healthz").headers["Cache-Control"] == PRIVATE


def test_a_board_page_shows_a_new_record_at_once(api, client):
    sid, h = api.server()
    api.heartbeat(sid, h)
    alice = api.player("alice")
    assert api.join(sid, h, alice).status_code == 200
    assert client.put("/v1/boards/ctf.x", json={"order": "desc", "operator": "best"},
                      headers=api.admin).status_code in (200, 201)
    for score in (10, 25):
        resp = client.post("/v1/boards/ctf.x/records", headers=h,
                           json={"player": "alice", "score": score})
        assert resp.status_code in (200, 201), resp.json
        page = client.get("/boards/ctf.x").get_data(as_text=True)
        assert f'<td class="num score">{score}</td>' in page


def test_a_profile_shows_every_change_at_once(api, client):
    """A visitor's profile is kept by what it shows (shared/web/pages.py _anonymous_profile):
    a change in any of it is a new page at once, and an unchanged one is the same page."""
    sid, h = api.server()
    api.heartbeat(sid, h, name="Alpha", map="ac_desert", public=True)
    alice, bob = api.player("alice"), api.player("bob")
    assert api.join(sid, h, alice).status_code == 200

    def profile() -> str:
        resp = client.get("/players/alice")
        assert resp.status_code == 200
        return resp.get_data(as_text=True)

    assert "Alpha</a> · ac_desert" in profile()
    assert profile() == profile()
    api.heartbeat(sid, h, name="Alpha", map="ac_depot", public=True)
    assert "Alpha</a> · ac_depot" in profile()
    assert client.put("/v1/boards/ctf.x", json={"order": "desc", "operator": "best"},
                      headers=api.admin).status_code in (200, 201)
    assert "No record yet." in profile()
    assert api.join(sid, h, bob).status_code == 200
    # each record, then alice's rank and score on her profile
    for who, score, rank, held in (("alice", 10, 1, 10), ("alice", 25, 1, 25), ("bob", 30, 2, 25)):
        resp = client.post("/v1/boards/ctf.x/records", headers=h,
                           json={"player": who, "score": score})
        assert resp.status_code in (200, 201), resp.json
        page = profile()
        assert f'<td class="num rank">#{rank}</td>' in page, (who, score)
        assert f'<td class="num score">{held}</td>' in page, (who, score)
    assert client.delete(f"/v1/servers/{sid}/players/alice", headers=h).status_code == 204
    assert 'class="status offline"' in profile()


def test_a_logged_in_viewer_never_gets_a_visitors_profile(api, client):
    sid, h = api.server()
    api.heartbeat(sid, h, public=True)
    alice, bob = api.player("alice"), api.player("bob")
    assert api.join(sid, h, alice).status_code == 200
    visitor = client.get("/players/alice").get_data(as_text=True)
    assert 'href="/login"' in visitor
    client.set_cookie("ssm_session", api.token(bob))
    viewer = client.get("/players/alice").get_data(as_text=True)
    assert '<a class="me" href="/me">bob</a>' in viewer and 'href="/login"' not in viewer
    client.delete_cookie("ssm_session")
    assert client.get("/players/alice").get_data(as_text=True) == visitor
