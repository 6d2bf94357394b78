"""The players' web (README "Web pages") in a real headless Chromium (Playwright), against the app
served over real HTTP on a free port with the test Redis, seeded through the API.

Screenshots land in ``artifacts/screenshots/`` (git-ignored; CI keeps them as artefacts).
Without a browser these tests skip, except under CI=true, where a missing browser fails.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api
from tests.webbrowser import serve

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"



@pytest.fixture
def site(app: Any) -> Iterator[str]:
    url, server = serve(app)
    yield url
    server.shutdown()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, errors  # a CSP violation or a script error shows up here


def shot(pg: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def seed(api: Api) -> dict[str, Any]:
    """A small world: three public servers (busy CTF, empty TDM, full CTF on another map), one
    private, two players online (alice on the busy one), a board with records."""
    made: dict[str, Any] = {}
    busy, busy_h = api.server("busy")
    api.heartbeat(busy, busy_h, name="Desert CTF #1", map="ac_desert", mode="ctf",
                  players=["alice", "[ACE]bob", "charlie"], max_players=16)
    empty, empty_h = api.server("empty")
    api.heartbeat(empty, empty_h, name="Quiet TDM", host="10.0.0.7", port=28770,
                  map="ac_depot", mode="tdm", players=[], max_players=12)
    full, full_h = api.server("full")
    api.heartbeat(full, full_h, name="Full House", map="ac_mines", mode="ctf",
                  players=["p1", "p2", "p3", "p4"], max_players=4)
    hidden, hidden_h = api.server("hidden")
    api.heartbeat(hidden, hidden_h, name="Private match", public=False, players=["dave"])
    for name in ("alice", "bob", "dave"):
        made[name] = api.player(name)
    assert api.join(busy, busy_h, made["alice"]).status_code == 200
    assert api.join(hidden, hidden_h, made["dave"]).status_code == 200
    resp = api.client.put("/v1/boards/ctf.ac_desert", json={"order": "desc", "operator": "best"},
                          headers=api.admin)
    assert resp.status_code == 201, resp.json
    for who, score in (("alice", 31), ("dave", 12)):
        srv = (busy, busy_h) if who == "alice" else (hidden, hidden_h)
        resp = api.client.post("/v1/boards/ctf.ac_desert/records", headers=srv[1],
                               json={"player": who, "score": score, "meta": {"flags": score // 4,
                                                                             "frags": score}})
        assert resp.status_code == 200, resp.json
    made.update(busy=(busy, busy_h), empty=(empty, empty_h), full=(full, full_h),
                hidden=(hidden, hidden_h))
    return made


def names(pg: Any) -> list[str]:
    return pg.locator("tr.server .sname").all_inner_texts()


def test_browser_lists_live_public_servers(api, site, page):
    seed(api)
    page.goto(site + "/")
    assert names(page) == ["Full House", "Desert CTF #1", "Quiet TDM"]  # busiest first
    row = page.locator("tr.server", has_text="Desert CTF #1")
    assert row.locator(".names li").all_inner_texts() == ["alice", "[ACE]bob", "charlie"]
    assert row.locator(".connect a").get_attribute("href") == "assaultcube://ac.example.org:28763"
    assert row.locator(".age").inner_text().endswith("s ago")
    assert "Private match" not in page.content()
    shot(page, "browser-desktop")


def test_filter_by_mode_and_map(api, site, page):
    seed(api)
    page.goto(site + "/")
    assert page.locator("select[name=mode] option").all_inner_texts() == ["all", "ctf", "tdm"]
    page.select_option("select[name=mode]", "tdm")
    page.wait_for_url("**mode=tdm**")
    assert names(page) == ["Quiet TDM"]
    page.select_option("select[name=mode]", "ctf")
    page.wait_for_url("**mode=ctf**")
    page.select_option("select[name=map]", "ac_mines")
    page.wait_for_url("**map=ac_mines**")
    assert names(page) == ["Full House"]


def test_filters_work_without_javascript(api, site, browser):
    seed(api)
    ctx = browser.new_context(java_script_enabled=False)
    pg = ctx.new_page()
    pg.goto(site + "/")
    pg.select_option("select[name=mode]", "ctf")
    pg.check("input[name=hide_full]")
    pg.click("button[type=submit]")
    pg.wait_for_url("**mode=ctf**")
    assert names(pg) == ["Desert CTF #1"]
    ctx.close()


def test_hide_empty_and_full(api, site, page):
    seed(api)
    page.goto(site + "/")
    page.check("input[name=hide_empty]")
    page.wait_for_url("**hide_empty=1**")
    assert names(page) == ["Full House", "Desert CTF #1"]
    page.check("input[name=hide_full]")
    page.wait_for_url("**hide_full=1**")
    assert names(page) == ["Desert CTF #1"]
    page.goto(site + "/?sort=name")
    assert names(page) == ["Desert CTF #1", "Full House", "Quiet TDM"]


def test_list_follows_heartbeats_without_reload(api, site, page):
    made = seed(api)
    page.goto(site + "/?hide_empty=1")
    page.evaluate("window.__same_page = true")
    assert "Quiet TDM" not in names(page)
    empty, empty_h = made["empty"]
    api.heartbeat(empty, empty_h, name="Quiet TDM", host="10.0.0.7", port=28770,
                  map="ac_depot", mode="tdm", players=["newcomer"], max_players=12)
    page.locator("tr.server", has_text="Quiet TDM").wait_for(timeout=10_000)
    assert page.locator("tr.server", has_text="Quiet TDM").locator(".names").inner_text() \
        == "newcomer"
    assert page.evaluate("window.__same_page") is True  # no reload happened
    shot(page, "browser-live")


def test_script_looking_names_render_as_text(api, site, page):
    sid, headers = api.server()
    evil = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"
    api.heartbeat(sid, headers, name=evil[:64], players=["<b>x</b>"])
    page.goto(site + "/")
    assert names(page) == [evil[:64]]
    assert page.locator("tr.server .names li").inner_text() == "<b>x</b>"
    assert page.evaluate("window.__pwned") is None
    resp = page.request.get(site + "/")
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp


def test_board_page_ranks_and_pages(api, site, page):
    made = seed(api)
    busy, busy_h = made["busy"]
    for i in range(30):  # 30 more players with records: two pages of 25
        name = f"p{i:02d}"
        api.player(name)
        api.join(busy, busy_h, api.login(name))
        resp = api.client.post("/v1/boards/ctf.ac_desert/records", headers=busy_h,
                               json={"player": name, "score": 100 + i})
        assert resp.status_code == 200, resp.json
    page.goto(site + "/boards/ctf.ac_desert")
    ranks = page.locator("td.rank").all_inner_texts()
    players = page.locator("td.player").all_inner_texts()
    assert ranks == [str(i) for i in range(1, 26)]
    assert players[:2] == ["p29", "p28"]
    assert page.locator("nav.tabs").count() == 0  # no reset: no season tabs
    shot(page, "board-desktop")
    page.click("a[rel=next]")
    assert page.locator("td.rank").all_inner_texts() == [str(i) for i in range(26, 33)]
    assert page.locator("td.player").all_inner_texts()[-2:] == ["alice", "dave"]
    page.click("a[rel=prev]")
    assert page.locator("td.rank").first.inner_text() == "1"
    missing = page.request.get(site + "/boards/no.such.board")
    assert missing.status == 404 and "<h1>404</h1>" in missing.text()


def test_board_page_switches_seasons(api, site, page, clock):
    day = 1773144000  # 2026-03-10 12:00 UTC
    clock.offset = day - time.time()
    sid, headers = api.server("daily")
    assert api.heartbeat(sid, headers).status_code == 200
    resp = api.client.put("/v1/boards/ctf.daily", headers=api.admin,
                          json={"order": "desc", "operator": "best", "reset": "daily"})
    assert resp.status_code == 201, resp.json
    for name in ("alice", "bob"):
        assert api.join(sid, headers, api.player(name)).status_code == 200
    for name, score in (("alice", 9), ("bob", 4)):
        assert api.client.post("/v1/boards/ctf.daily/records", headers=headers,
                               json={"player": name, "score": score}).status_code == 200
    clock.offset = day + 86400 - time.time()  # the next day: season 1
    assert api.heartbeat(sid, headers).status_code == 200
    assert api.client.post("/v1/boards/ctf.daily/records", headers=headers,
                           json={"player": "bob", "score": 7}).status_code == 200
    page.goto(site + "/boards/ctf.daily")
    assert page.locator("nav.tabs a").all_inner_texts() == ["Now", "Season 0"]
    assert page.locator("nav.tabs a[aria-current=page]").inner_text() == "Now"
    assert page.locator("td.player").all_inner_texts() == ["bob"]
    assert "running" in page.locator("#season").inner_text()
    page.click("nav.tabs a >> text=Season 0")
    assert page.locator("nav.tabs a[aria-current=page]").inner_text() == "Season 0"
    assert page.locator("td.player").all_inner_texts() == ["alice", "bob"]
    assert page.locator("td.rank").all_inner_texts() == ["1", "2"]
    assert page.locator("td.score").all_inner_texts() == ["9", "4"]
    assert page.locator("#season").inner_text() == \
        "Season 0 · 10 Mar 2026 · ended, read-only"
    shot(page, "board-seasons")
    page.click("nav.tabs a >> text=Now")
    assert page.locator("td.player").all_inner_texts() == ["bob"]


EVIL_CLAN = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"[:64]


def found_clan(api: Api, made: dict[str, Any]) -> None:
    """Clan AcE with a script-looking name, founded by alice; bob invited, not yet a member."""
    c = api.client
    assert c.put("/v1/clans/AcE", json={"name": EVIL_CLAN},
                 headers=made["alice"]).status_code == 201
    assert c.put("/v1/clans/ace/members/bob", headers=made["alice"]).status_code == 200


def test_profile_shows_online_status_records_and_clan(api, site, page):
    found_clan(api, seed(api))
    page.goto(site + "/players/alice")
    presence = page.locator("#presence").inner_text()
    assert presence.startswith("Online on Desert CTF #1")
    assert page.locator("td.board").all_inner_texts() == ["ctf.ac_desert"]
    assert page.locator("td.rank").all_inner_texts() == ["#1"]
    assert page.locator("h1 .clan").inner_text() == "[AcE]"
    clan = page.locator("h2:text-is('Clan') + p").inner_text()
    assert clan == f"{EVIL_CLAN} [AcE] · 1 member · owner alice"
    assert page.evaluate("window.__pwned") is None
    shot(page, "player-desktop")
    page.goto(site + "/players/dave")  # on a private server: online, but not where
    assert page.locator("#presence").inner_text().strip() == "Online on a private server"
    page.goto(site + "/players/bob")  # invited only: no clan
    assert page.locator("#presence").inner_text().startswith("Offline")
    assert page.locator(".clan").count() == 0 and "Clan" not in page.content()
    missing = page.request.get(site + "/players/nobody")
    assert missing.status == 404 and "no player named nobody" in missing.text()


def test_profile_html_shows_the_clan_escaped(api, client):
    """The profile over plain HTTP (no browser): the clan's tag and name, escaped; none for a
    player who is only invited."""
    found_clan(api, seed(api))
    html = client.get("/players/alice").get_data(as_text=True)
    assert '<h1>alice <span class="clan">[AcE]</span></h1>' in html
    assert "<h2>Clan</h2>" in html and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert "<script>window" not in html and "<img src=x" not in html
    assert "· 1 member ·" in html
    bob = client.get("/players/bob").get_data(as_text=True)
    assert "<h2>Clan</h2>" not in bob and 'class="clan"' not in bob
    assert client.post("/v1/clans/ACE/join", headers=api.login("bob")).status_code == 200
    bob = client.get("/players/bob").get_data(as_text=True)
    assert '<h1>bob <span class="clan">[AcE]</span></h1>' in bob and "· 2 members ·" in bob


@pytest.mark.parametrize("path", ["/", "/boards/ctf.ac_desert", "/players/alice"])
def test_phone_width_has_no_horizontal_overflow(api, site, browser, path):
    seed(api)
    sid, headers = api.server("long")
    api.heartbeat(sid, headers, name="A" * 64, host="a-very-long-hostname.example.org",
                  players=[f"player{i:02d}" for i in range(16)], map="ac_" + "x" * 61)
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    pg = ctx.new_page()
    pg.goto(site + path)
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    shot(pg, "phone" + path.replace("/", "-").rstrip("-").replace(".", "-"))
    ctx.close()
