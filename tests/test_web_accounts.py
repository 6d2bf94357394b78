"""Players' accounts on the web (README "Web pages"): sign-up, log-in, the session cookie and CSRF,
/me and its pages, the operations behind them (session.list/end/end_others, player.export), the
header and the /boards index. Over HTTP with the Flask client first; then the stories in a real
headless Chromium (Playwright with Debian's browser), against the app served on a free port.

Screenshots land in ``artifacts/screenshots/`` (git-ignored); ``tests/screenshots.py`` makes
the README's. Without a browser the browser tests skip, except under CI=true.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.auth import sha256
from tests import webbrowser
from tests.conftest import make_config

SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf(html: str) -> str:
    return CSRF.search(html).group(1)


def form_post(client: Any, page: str, data: dict[str, str], url: str | None = None) -> Any:
    """Load the form page, then post ``data`` with the page's token, as a browser does."""
    token = csrf(client.get(page).get_data(as_text=True))
    return client.post(url or page, data={**data, "csrf": token})


def signup(client: Any, name: str, password: str = "secret11") -> Any:
    return form_post(client, "/signup", {"name": name, "password": password,
                                         "password2": password})


def session_token(client: Any) -> str | None:
    cookie = client.get_cookie("ssm_session")
    return cookie.value if cookie else None


@pytest.fixture
def browser_client(app: Any) -> Any:
    """A second browser (its own cookie jar) on the same app."""
    return app.test_client()


# -- sign up, log in, the cookie ------------------------------------------------------------

def test_signup_sets_an_api_session_cookie_and_sees_other_to_me(client, api):
    resp = signup(client, "Alice")
    assert resp.status_code == 303 and resp.headers["Location"] == "/me"
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("ssm_session=p.") and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie and "Secure" not in cookie
    token = session_token(client)
    assert api.client.get("/v1/mail/unread", headers=api.bearer(token)).status_code == 200
    assert api.client.get("/v1/players/alice").json["name"] == "Alice"
    page = client.get("/me").get_data(as_text=True)
    assert '<a class="me" href="/me">Alice</a>' in page and "0 unread" in page


def test_login_is_the_apis_session_counted_and_revocable(client, api, browser_client):
    api.player("bob", "secret11")
    resp = form_post(browser_client, "/login", {"name": "BOB", "password": "secret11"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/me"
    token = session_token(browser_client)
    bob = api.login("bob", "secret11")
    listed = api.client.get("/v1/sessions", headers=bob).json["sessions"]
    assert sessions_id(token) in [s["id"] for s in listed] and len(listed) == 3
    out = form_post(browser_client, "/me", {}, url="/logout")
    assert out.status_code == 303 and "ssm_session=;" in out.headers["Set-Cookie"]
    assert api.client.get("/v1/sessions", headers=api.bearer(token)).status_code == 401


def sessions_id(token: str) -> str:
    return sha256(token)[:16]


def test_cookie_is_secure_when_configured(redis_server, r, clock):
    from wsgi import create_app

    client = create_app(make_config(redis_server.url, web_cookie_secure=1), r,
                        clock=clock).test_client()
    form = client.get("/signup").headers["Set-Cookie"]  # the form's ssm_csrf
    assert form.startswith("ssm_csrf=") and "Secure" in form and "HttpOnly" in form
    resp = signup(client, "carol")
    assert resp.status_code == 303 and "Secure" in resp.headers["Set-Cookie"]


@pytest.mark.parametrize("data, status, shown", [
    ({"name": "dave", "password": "secret11", "password2": "other-one"}, 400, "password2"),
    ({"name": "x", "password": "secret11", "password2": "secret11"}, 400, "name"),
    ({"name": "dave", "password": "short", "password2": "short"}, 400, "password"),
    ({"name": "taken", "password": "secret11", "password2": "secret11"}, 409, "taken"),
])
def test_signup_refusals_show_on_the_form_and_keep_the_name(client, api, data, status, shown):
    api.player("taken", "secret11")
    resp = form_post(client, "/signup", data)
    page = resp.get_data(as_text=True)
    assert resp.status_code == status and 'class="error form-error"' in page and shown in page
    assert f'name="name" value="{data["name"]}"' in page
    assert data["password"] not in page.replace('name="password"', "")
    assert session_token(client) is None


def test_registrations_per_address_and_login_lockout_apply(redis_server, r, clock, api):
    from wsgi import create_app

    client = create_app(make_config(redis_server.url, register_limit_per_ip_hour=2), r,
                        clock=clock).test_client()
    assert signup(client, "p1").status_code == 303
    client.delete_cookie("ssm_session")
    assert signup(client, "p2").status_code == 303
    client.delete_cookie("ssm_session")
    refused = signup(client, "p3")
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert "p3" in refused.get_data(as_text=True)
    assert client.get("/players/p3").status_code == 404
    for _ in range(5):
        assert form_post(client, "/login", {"name": "p1", "password": "wrong-one"}
                         ).status_code == 401
    locked = form_post(client, "/login", {"name": "p1", "password": "secret11"})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert "form-error" in locked.get_data(as_text=True) and session_token(client) is None


def test_a_post_without_a_valid_token_is_refused_and_changes_nothing(client, api):
    resp = client.post("/signup", data={"name": "eve", "password": "secret11",
                                        "password2": "secret11"})
    assert resp.status_code == 403
    assert api.client.get("/v1/players/eve").status_code == 404
    signup(client, "frank")
    api.player("gina", "secret11")
    gina = api.login("gina", "secret11")
    mail = {"to": "gina", "subject": "hi", "body": "hello"}
    for token in ("", "AAAA", csrf(client.get("/me").get_data(as_text=True))[:-2] + "AA"):
        resp = client.post("/me/mail/new", data={**mail, "csrf": token})
        assert resp.status_code == 403
    # a token from another browser's page does not fit this browser's session
    other = client.application.test_client()
    signup(other, "hank")
    resp = client.post("/me/mail/new", data={**mail, "csrf": csrf(other.get("/me").text)})
    assert resp.status_code == 403
    assert api.client.get("/v1/mail", headers=gina).json["mail"] == []
    assert client.post("/logout").status_code == 403 and session_token(client)
    assert form_post(client, "/me/mail/new", mail).status_code == 303  # with it: sent
    assert len(api.client.get("/v1/mail", headers=gina).json["mail"]) == 1


def test_the_token_is_masked_afresh_in_every_answer(client):
    signup(client, "ivan")
    tokens = {csrf(client.get("/me").get_data(as_text=True)) for _ in range(5)}
    assert len(tokens) == 5
    for token in tokens:  # each one is good
        assert client.post("/me/sessions/others", data={"csrf": token}).status_code == 303


# -- /me ----------------------------------------------------------------------------------

def test_mail_send_list_read_delete(client, api, browser_client):
    signup(client, "jo")
    signup(browser_client, "kim")
    lou = api.player("lou", "secret11")
    for i in range(23):  # at most 20 unread from one sender (MAIL_UNREAD_PER_SENDER_MAX)
        if i % 2:
            assert api.client.post("/v1/mail", headers=lou, json={
                "to": "jo", "subject": f"s{i}", "body": f"b{i}"}).status_code == 201
        else:
            assert form_post(browser_client, "/me/mail/new",
                             {"to": "jo", "subject": f"s{i}", "body": f"b{i}"}
                             ).status_code == 303
    page = client.get("/me/mail").get_data(as_text=True)
    subjects = re.findall(r'<td class="subject"><a href="/me/mail/(\w+)">(s\d+)</a>', page)
    assert [s for _, s in subjects] == [f"s{i}" for i in range(22, 2, -1)]  # newest first, 20
    assert page.count('class="mail unread"') == 20 and "23 unread" in page
    older = re.search(r'href="(/me/mail\?cursor=\d+)"', page).group(1)
    assert re.findall(r">(s\d+)</a>", client.get(older).get_data(as_text=True)) == \
        ["s2", "s1", "s0"]
    mail_id = subjects[0][0]
    shown = client.get(f"/me/mail/{mail_id}").get_data(as_text=True)
    assert '<div class="body" id="body">b22</div>' in shown and "22 unread" in shown
    assert 'class="mail unread"' not in client.get("/me/mail").text.split(mail_id)[0][-200:]
    gone = form_post(client, f"/me/mail/{mail_id}", {}, url=f"/me/mail/{mail_id}/delete")
    assert gone.status_code == 303
    assert client.get(f"/me/mail/{mail_id}").status_code == 404
    refused = form_post(client, "/me/mail/new", {"to": "nobody", "subject": "typed",
                                                 "body": "kept text"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 404 and "kept text</textarea>" in text and 'value="typed"' in text


def test_script_looking_text_stays_text(client, api, browser_client):
    signup(client, "lee")
    signup(browser_client, "max")
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    form_post(browser_client, "/me/mail/new", {"to": "lee", "subject": evil, "body": evil})
    inbox = client.get("/me/mail").get_data(as_text=True)
    shown = client.get(re.search(r'href="(/me/mail/\w+)"', inbox.split("<tbody>")[1]).group(1))
    for page in (inbox, shown.get_data(as_text=True)):
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_password_change_ends_other_sessions_and_keeps_this_one(client, api, browser_client):
    signup(client, "ned", "secret11")
    form_post(browser_client, "/login", {"name": "ned", "password": "secret11"})
    game = api.login("ned", "secret11")
    wrong = form_post(client, "/me/password", {"old": "nope-nope", "new": "newpass11",
                                               "new2": "newpass11"})
    assert wrong.status_code == 401 and "form-error" in wrong.get_data(as_text=True)
    differ = form_post(client, "/me/password", {"old": "secret11", "new": "newpass11",
                                                "new2": "newpass12"})
    assert differ.status_code == 400 and "new2" in differ.get_data(as_text=True)
    done = form_post(client, "/me/password", {"old": "secret11", "new": "newpass11",
                                              "new2": "newpass11"})
    assert done.status_code == 200, done.get_data(as_text=True)[-600:]
    assert "2 other sessions ended" in done.get_data(as_text=True)
    assert client.get("/me").status_code == 200
    out = browser_client.get("/me")
    assert out.status_code == 303 and out.headers["Location"] == "/login"
    assert api.client.get("/v1/sessions", headers=game).status_code == 401
    assert form_post(browser_client, "/login", {"name": "ned", "password": "newpass11"}
                     ).status_code == 303


def test_sessions_list_end_one_and_all_others(client, api, clock):
    signup(client, "olga")
    phones = [api.login("olga", "secret11") for _ in range(3)]
    clock.advance(120)  # the page marks this session used (at most once a minute)
    page = client.get("/me/sessions").get_data(as_text=True)
    ids = re.findall(r'data-id="([0-9a-f]{16})"', page)
    assert len(ids) == 4 and page.count("this browser") == 1
    mine = sessions_id(session_token(client))
    listed = {s["id"]: s for s in api.client.get("/v1/sessions", headers=phones[0]).json[
        "sessions"]}
    assert listed[mine]["last_used"] >= listed[mine]["created"] + 120
    first = sessions_id(api.token(phones[0]))
    assert form_post(client, "/me/sessions", {}, url=f"/me/sessions/{first}/end"
                     ).status_code == 303
    assert api.client.get("/v1/sessions", headers=phones[0]).status_code == 401
    assert api.client.get("/v1/sessions", headers=phones[1]).status_code == 200
    assert form_post(client, "/me/sessions", {}, url="/me/sessions/others").status_code == 303
    assert all(api.client.get("/v1/sessions", headers=p).status_code == 401 for p in phones)
    assert re.findall(r'data-id="([0-9a-f]{16})"', client.get("/me/sessions").text) == [mine]
    ended = form_post(client, "/me/sessions", {}, url=f"/me/sessions/{mine}/end")
    assert ended.headers["Location"] == "/login" and session_token(client) is None


def test_api_calls_mark_a_session_used_once_a_minute(api, clock, r):
    alice = api.player("alice", "secret11")
    first = api.client.get("/v1/sessions", headers=alice).json["sessions"][0]
    assert first["last_used"] == first["created"]
    clock.advance(30)
    api.client.get("/v1/mail/unread", headers=alice)
    assert api.client.get("/v1/sessions", headers=alice).json["sessions"][0]["last_used"] == \
        first["created"]  # under a minute: no write
    clock.advance(60)
    api.client.get("/v1/mail/unread", headers=alice)
    assert api.client.get("/v1/sessions", headers=alice).json["sessions"][0]["last_used"] >= \
        first["created"] + 89


def test_ending_sessions_tells_the_relays(api, r):
    from shared import keys

    alice = api.player("alice", "secret11")
    other = api.login("alice", "secret11")
    before = r.xlen(keys.revocations())
    assert api.client.delete(f"/v1/sessions/{sessions_id(api.token(other))}",
                             headers=alice).status_code == 204
    api.login("alice", "secret11")
    assert api.client.delete("/v1/sessions", headers=alice).status_code == 200
    got = r.xrange(keys.revocations())[before:]
    assert [(f["k"], f["w"]) for _, f in got] == [("player", "alice")] * 2


def test_session_operations_over_the_api(api):
    alice = api.player("alice", "secret11")
    other = api.login("alice", "secret11")
    mallory = api.player("mallory", "secret11")
    listed = api.client.get("/v1/sessions", headers=alice).json["sessions"]
    assert [s["current"] for s in listed].count(True) == 1 and len(listed) == 2
    assert all(set(s) == {"id", "created", "last_used", "expires_at", "current"} for s in listed)
    theirs = sessions_id(api.token(other))
    assert api.client.delete(f"/v1/sessions/{theirs}", headers=mallory).status_code == 404
    assert api.client.delete(f"/v1/sessions/{theirs}", headers=alice).status_code == 204
    assert api.client.get("/v1/sessions", headers=other).status_code == 401
    assert api.client.delete("/v1/sessions/not-an-id", headers=alice).status_code == 400
    again = api.login("alice", "secret11")
    assert api.client.delete("/v1/sessions", headers=alice).json == {"sessions_ended": 1}
    assert api.client.get("/v1/sessions", headers=again).status_code == 401
    assert api.client.get("/v1/sessions", headers=alice).status_code == 200
    assert api.client.delete("/v1/sessions/current", headers=alice).status_code == 204


def test_export_holds_everything_and_no_secret(client, api, clock, r):
    signup(client, "pat")
    token = session_token(client)
    bob = api.player("bob", "secret11")
    sid, srv = api.server("one")
    api.heartbeat(sid, srv)
    assert api.join(sid, srv, api.login("pat", "secret11")).status_code == 200
    for board, reset in (("ctf.daily", "daily"), ("ctf.all", None)):
        api.client.put(f"/v1/boards/{board}", headers=api.admin,
                       json={"order": "desc", "operator": "best",
                             **({"reset": reset} if reset else {})})
        assert api.client.post(f"/v1/boards/{board}/records", headers=srv,
                               json={"player": "pat", "score": 9}).status_code == 200
    api.client.put("/v1/players/pat/settings/fov", json={"value": 110},
                   headers=api.login("pat", "secret11"))
    api.client.post("/v1/mail", json={"to": "pat", "subject": "exported?", "body": "yes"},
                    headers=bob)
    api.client.post("/v1/bans", json={"player": "pat", "reason": "spam", "duration": 60},
                    headers=api.admin)
    lifted = api.client.post("/v1/bans", json={"player": "pat", "reason": "oops"},
                             headers=api.admin).json["id"]
    assert api.client.delete(f"/v1/bans/{lifted}", headers=api.admin).status_code == 204
    api.client.post("/v1/bans", json={"player": "bob", "reason": "other", "duration": 60},
                    headers=api.admin)
    clock.advance(86400)  # ctf.daily's season 0 is past now
    api.heartbeat(sid, srv)
    resp = client.get("/me/export")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="ssmglobal-pat.json"'
    assert resp.headers["Cache-Control"] == "private, no-store"
    text = resp.get_data(as_text=True)
    doc = json.loads(text)
    assert doc["account"]["name"] == "pat" and "pw" not in doc["account"]
    assert doc["settings"] == {"fov": 110}
    assert [(m["from"], m["subject"], m["body"], m["read"]) for m in doc["mail"]] == \
        [("bob", "exported?", "yes", False)]
    assert {(x["board"], x["season"], x["score"]) for x in doc["records"]} == \
        {("ctf.all", None, 9), ("ctf.daily", 0, 9)}
    assert [e["op"] for e in doc["audit"]] == ["ban.create", "ban.create"]
    assert all("player=pat" in e["target"] for e in doc["audit"])
    assert [b["reason"] for b in doc["bans"]] == ["spam"]
    assert any(s["current"] for s in doc["sessions"])
    stored = r.hget("ssm:{p:pat}:acct", "pw")
    for secret in (token, token.split(".")[-1], stored, sha256(token)):
        assert secret not in text
    assert "scrypt$" not in text
    pat = api.login("pat", "secret11")
    assert api.client.get("/v1/mail/unread", headers=pat).json == {"unread": 1}  # none read


def test_export_is_only_the_players_own(api):
    api.player("quinn", "secret11")
    rob = api.player("rob", "secret11")
    assert api.client.get("/v1/players/quinn/export", headers=rob).status_code == 403
    assert api.client.get("/v1/players/quinn/export").status_code == 401


def test_delete_needs_the_password_then_the_profile_is_404(client, api):
    signup(client, "sam")
    assert api.client.put("/v1/clans/SAMS", json={"name": "Sam's"},
                          headers=api.login("sam", "secret11")).status_code == 201
    wrong = form_post(client, "/me/delete", {"password": "not-it"})
    assert wrong.status_code == 401 and "form-error" in wrong.get_data(as_text=True)
    assert api.client.get("/v1/players/sam").status_code == 200
    done = form_post(client, "/me/delete", {"password": "secret11"})
    assert done.status_code == 200 and "Account deleted" in done.get_data(as_text=True)
    assert '<a href="/login">Log in</a>' in done.get_data(as_text=True)  # the header too
    assert "ssm_session=;" in done.headers["Set-Cookie"]
    assert client.get("/players/sam").status_code == 404
    assert api.client.get("/v1/players/sam").status_code == 404
    assert api.client.get("/v1/clans/SAMS").status_code == 404  # left, as player.delete does
    assert client.get("/me").headers["Location"] == "/login"


def test_account_pages_need_a_login_and_are_private(client):
    for path in ("/me", "/me/mail", "/me/mail/new", "/me/password", "/me/sessions",
                 "/me/export", "/me/delete"):
        resp = client.get(path)
        assert resp.status_code == 303 and resp.headers["Location"] == "/login", path
    signup(client, "tess")
    for path in ("/me", "/me/mail", "/me/mail/new", "/me/password", "/me/sessions",
                 "/me/delete", "/", "/boards", "/players/tess"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert resp.headers["Cache-Control"] == "private, no-store", path
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'"), path


# -- navigation ---------------------------------------------------------------------------

def test_header_boards_and_browser_links(client, api):
    anonymous = client.get("/boards").get_data(as_text=True)
    assert '<a href="/login">Log in</a><a href="/signup">Sign up</a>' in anonymous
    assert "no-store" not in client.get("/boards").headers.get("Cache-Control", "")
    api.client.put("/v1/boards/ctf.ac_desert", headers=api.admin,
                   json={"order": "desc", "operator": "best", "reset": "weekly"})
    api.client.put("/v1/boards/frags.total", headers=api.admin,
                   json={"order": "desc", "operator": "incr"})
    sid, srv = api.server("one")
    api.heartbeat(sid, srv, players=["uma", "a b", "<i>x</i>"])
    signup(client, "uma")
    api.client.post("/v1/mail", json={"to": "uma", "body": "hi"},
                    headers=api.player("vic", "secret11"))
    for path in ("/", "/boards", "/players/uma", "/docs", "/boards/ctf.ac_desert"):
        page = client.get(path).get_data(as_text=True)
        assert '<a class="me" href="/me">uma</a>' in page, path
        assert '<a class="unread some" href="/me/mail" title="unread mail">1 unread</a>' in page
        assert '<a href="/boards">Boards</a>' in page
    boards = client.get("/boards").get_data(as_text=True)
    assert '<a href="/boards/ctf.ac_desert">ctf.ac_desert</a>' in boards and "weekly" in boards
    assert '<a href="/boards/frags.total">frags.total</a>' in boards
    browser = client.get("/").get_data(as_text=True)
    assert '<li><a href="/players/uma">uma</a></li>' in browser
    assert "<li>a b</li>" in browser and "<li>&lt;i&gt;x&lt;/i&gt;</li>" in browser


def test_docs_has_the_sites_look_and_menu(client):
    resp = client.get("/docs")
    page = resp.get_data(as_text=True)
    assert '<link rel="stylesheet" href="/static/style.css">' in page
    assert '<nav><a href="/">Servers</a><a href="/boards">Boards</a><a href="/docs">API</a>' \
        in page
    assert '<a href="/signup">Sign up</a>' in page and '<div class="docs">' in page
    assert page.count("<style>") == 1 and " style=" not in page  # its one sheet, by hash
    assert "'sha256-" in resp.headers["Content-Security-Policy"]


# -- in Chromium ----------------------------------------------------------------------------


@pytest.fixture
def site(app: Any) -> Iterator[str]:
    url, server = webbrowser.serve(app)
    yield url
    server.shutdown()


class Browsers:
    """Browser contexts (each its own cookies), each page watched for script and CSP errors."""

    def __init__(self, browser: Any, site: str):
        self.browser, self.site, self.contexts, self.errors = browser, site, [], []
        self.expected: set[int] = set()  # statuses a test expects a page to answer

    def expect(self, status: int) -> None:
        self.expected.add(status)

    def unexpected(self) -> list[str]:
        ok = [f"responded with a status of {s} " for s in self.expected]
        return [e for e in self.errors if not any(o in e for o in ok)]

    def page(self, width: int = 1280, height: int = 900) -> Any:
        ctx = self.browser.new_context(viewport={"width": width, "height": height},
                                       base_url=self.site, accept_downloads=True)
        self.contexts.append(ctx)
        pg = ctx.new_page()
        pg.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: self.errors.append(str(e)))
        pg.on("dialog", lambda d: self.errors.append(f"dialog: {d.message}"))
        return pg


@pytest.fixture
def browsers(browser: Any, site: str) -> Iterator[Browsers]:
    b = Browsers(browser, site)
    yield b
    for ctx in b.contexts:
        ctx.close()
    # a page answered with an error status is logged as a failed resource: fine where expected
    assert not b.unexpected(), b.errors


def shot(pg: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def ui_signup(pg: Any, name: str, password: str = "secret11") -> None:
    pg.goto("/signup")
    pg.fill("input[name=name]", name)
    pg.fill("input[name=password]", password)
    pg.fill("input[name=password2]", password)
    pg.click("form.account-form button[type=submit]")
    pg.wait_for_url("**/me")


def ui_mail(pg: Any, to: str, subject: str, body: str) -> None:
    pg.goto("/me/mail/new")
    pg.fill("input[name=to]", to)
    pg.fill("input[name=subject]", subject)
    pg.fill("textarea[name=body]", body)
    pg.click("form.account-form button[type=submit]")
    pg.wait_for_url("**/me/mail?sent=*")


def test_two_players_sign_up_mail_each_other_and_read_it(browsers):
    ann, ben = browsers.page(), browsers.page()
    ui_signup(ann, "ann")
    ui_signup(ben, "ben")
    assert ann.locator(".account .me").inner_text() == "ann"
    ui_mail(ann, "ben", "rematch?", "Same map at 21:00?\nBring friends.")
    ben.goto("/me")
    assert ben.locator(".account .unread").inner_text() == "1 unread"
    ben.click(".account .unread")
    row = ben.locator("tr.mail").first
    assert "unread" in row.get_attribute("class") and row.locator(".from").inner_text() == "ann"
    shot(ben, "accounts-inbox-desktop")
    row.locator(".subject a").click()
    assert ben.locator("#subject").inner_text() == "rematch?"
    assert ben.locator("#body").inner_text() == "Same map at 21:00?\nBring friends."
    assert ben.locator(".account .unread").inner_text() == "0 unread"
    ben.click("text=Reply")
    assert ben.input_value("input[name=to]") == "ann"
    ben.fill("input[name=subject]", "Re: rematch?")
    ben.fill("textarea[name=body]", "Deal.")
    ben.click("form.account-form button[type=submit]")
    ben.wait_for_url("**/me/mail?sent=ann")
    ann.goto("/me/mail")
    ann.locator("tr.mail .subject a").first.click()
    assert ann.locator("#body").inner_text() == "Deal."
    ann.click("form[action$='/delete'] button")
    ann.wait_for_url("**/me/mail?deleted=1")
    assert ann.locator("tr.mail").count() == 0
    ann.click(".account button.link")  # log out
    ann.wait_for_url(browsers.site + "/")
    assert ann.locator(".account a[href='/login']").inner_text() == "Log in"


def test_script_looking_subject_stays_text_in_the_browser(browsers):
    cat, dan = browsers.page(), browsers.page()
    ui_signup(cat, "cat")
    ui_signup(dan, "dan")
    evil = "<script>alert(1)</script><b>bold</b>"
    ui_mail(cat, "dan", evil, evil)
    dan.goto("/me/mail")
    assert dan.locator("tr.mail .subject a").inner_text() == evil
    dan.locator("tr.mail .subject a").click()
    assert dan.locator("#subject").inner_text() == evil and dan.locator("#body b").count() == 0
    assert dan.evaluate("document.querySelectorAll('main script').length") == 0
    # browsers.errors holds any dialog an executed alert() would have opened


def test_a_form_post_without_the_token_is_refused_and_sends_nothing(browsers, api):
    eve = browsers.page()
    ui_signup(eve, "eve")
    api.player("fay", "secret11")
    fay = api.login("fay", "secret11")
    eve.goto("/me/mail/new")
    eve.locator("main input[name=csrf]").evaluate("e => e.remove()")
    eve.fill("input[name=to]", "fay")
    eve.fill("textarea[name=body]", "forged")
    browsers.expect(403)
    with eve.expect_response("**/me/mail/new") as answer:
        eve.click("form.account-form button[type=submit]")
    assert answer.value.status == 403
    assert "did not come from this site" in eve.locator("p.error").inner_text()
    assert api.client.get("/v1/mail", headers=fay).json["mail"] == []


def test_a_password_change_logs_the_other_browser_out(browsers):
    home, cafe = browsers.page(), browsers.page()
    ui_signup(home, "gus", "first-pass")
    cafe.goto("/login")
    cafe.fill("input[name=name]", "gus")
    cafe.fill("input[name=password]", "first-pass")
    cafe.click("form.account-form button[type=submit]")
    cafe.wait_for_url("**/me")
    home.goto("/me/sessions")
    assert home.locator("tr.session").count() == 2
    shot(home, "accounts-sessions-desktop")
    home.goto("/me/password")
    home.fill("input[name=old]", "first-pass")
    home.fill("input[name=new]", "second-pass")
    home.fill("input[name=new2]", "second-pass")
    home.click("form.account-form button[type=submit]")
    assert "1 other session ended" in home.locator("p.notice").inner_text()
    cafe.goto("/me")
    assert cafe.url.endswith("/login")
    assert cafe.locator(".account a[href='/login']").count() == 1
    home.goto("/me")
    assert home.url.endswith("/me") and home.locator(".account .me").inner_text() == "gus"


def test_the_export_holds_the_mail_and_no_token(browsers):
    hal, ida = browsers.page(), browsers.page()
    ui_signup(hal, "hal")
    ui_signup(ida, "ida")
    ui_mail(ida, "hal", "for the export", "keep me")
    hal.goto("/me")
    with hal.expect_download() as dl:
        hal.click("a[href='/me/export']")
    text = Path(dl.value.path()).read_text()
    doc = json.loads(text)
    assert dl.value.suggested_filename == "ssmglobal-hal.json"
    assert [(m["from"], m["subject"], m["body"]) for m in doc["mail"]] == \
        [("ida", "for the export", "keep me")]
    token = next(c["value"] for c in hal.context.cookies() if c["name"] == "ssm_session")
    assert token not in text and token.split(".")[-1] not in text and "scrypt$" not in text


def test_deletion_makes_the_profile_404(browsers):
    jan = browsers.page()
    ui_signup(jan, "jan")
    jan.goto("/me/delete")
    shot(jan, "accounts-delete-desktop")
    jan.fill("input[name=password]", "secret11")
    jan.click("form.account-form button[type=submit]")
    assert jan.locator("h1").inner_text() == "Account deleted"
    browsers.expect(404)
    assert jan.goto("/players/jan").status == 404
    assert jan.locator(".account a[href='/signup']").count() == 1


def test_the_inbox_fits_a_390px_phone(browsers, api):
    kai = browsers.page(width=390, height=844)
    ui_signup(kai, "kai")
    sender = api.player("Lou[LONG]name", "secret11")
    for i in range(6):
        api.client.post("/v1/mail", headers=sender,
                        json={"to": "kai", "subject": f"{'W' * 100}"[:100 - i], "body": "x"})
    for path in ("/me/mail", "/me", "/me/sessions", "/me/mail/new", "/boards", "/docs"):
        kai.goto(path)
        assert kai.evaluate("document.documentElement.scrollWidth") <= 390, path
    kai.goto("/me/mail")
    shot(kai, "accounts-inbox-phone")
    kai.locator("tr.mail .subject a").first.click()
    assert kai.evaluate("document.documentElement.scrollWidth") <= 390
