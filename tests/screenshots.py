"""The README's screenshots of the players' web: ``python -m tests.screenshots``.

Starts a throwaway embedded Redis and the app (``tests/webbrowser.py``, as the browser tests
do), seeds a small demo world through the API (moving the app's clock to play a weekly board
for four weeks), and writes desktop and 390 px phone shots of the three pages, the sign-up
form and alice's account pages (logged in through the form) to ``docs/img/`` with Debian's
chromium driven by Playwright.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from shared.redis_conn import connect
from stack.embedded import EmbeddedRedis
from tests.conftest import Api, Clock, make_config
from tests.webbrowser import CHROMIUM, serve
from tests.webbrowser import missing as browser_missing

OUT = Path(__file__).resolve().parent.parent / "docs" / "img"

SERVERS = [  # name, host, port, map, mode, players, max
    ("Desert CTF #1 | EU", "ac.example.org", 28763, "ac_desert", "ctf",
     ["alice", "[ACE]bob", "charlie", "Zoë", "nightowl", "|KoS|frag"], 16),
    ("Pro TOSOK 24/7", "ac2.example.org", 28763, "ac_shine", "osok", ["sniper", "m4ster"], 8),
    ("Gema Heaven", "gema.example.net", 1999, "ac_gema_ultra", "ctf", ["climber"], 12),
    ("Full House TDM", "10.0.0.7", 28770, "ac_mines", "tdm", ["p1", "p2", "p3", "p4"], 4),
    ("Newbie Friendly DM", "ac.example.org", 28765, "ac_complex", "dm", [], 20),
]


def seed(api: Api, clock: Clock) -> None:
    """The servers, a weekly board played for four weeks (so its page has season tabs), a
    board without seasons, and alice's clan."""
    weeks = 3
    clock.offset = -weeks * 7 * 86400
    ids = []
    for server in SERVERS:
        ids.append(api.server(server[0][:20]))
    sid, headers = ids[0]
    api.client.put("/v1/boards/ctf.ac_desert", headers=api.admin,
                   json={"order": "desc", "operator": "best", "reset": "weekly"})
    api.client.put("/v1/boards/osok.ac_shine", json={"order": "desc", "operator": "best"},
                   headers=api.admin)
    names = ["alice", "bob", "charlie", "nightowl", "viper", "ghost", "kilo"]
    tokens = {name: api.player(name) for name in names}
    for week in range(weeks, -1, -1):
        clock.offset = -week * 7 * 86400
        api.heartbeat(sid, headers)
        for i, name in enumerate(names):
            api.join(sid, headers, tokens[name])
            score = 42 - 5 * ((i + week) % len(names))
            api.client.post("/v1/boards/ctf.ac_desert/records", headers=headers,
                            json={"player": name, "score": score,
                                  "meta": {"flags": score // 4, "frags": score * 2}})
            if week == 0:
                api.client.post("/v1/boards/osok.ac_shine/records", headers=headers,
                                json={"player": name, "score": 17 + 3 * i})
    api.client.put("/v1/clans/ACE", json={"name": "Aces High"}, headers=tokens["alice"])
    api.client.put("/v1/clans/ACE/members/bob", headers=tokens["alice"])
    api.client.post("/v1/clans/ACE/join", headers=tokens["bob"])
    for (sid_, headers_), (name, host, port, map_, mode, players, most) in zip(ids, SERVERS,
                                                                               strict=True):
        api.heartbeat(sid_, headers_, name=name, host=host, port=port, map=map_, mode=mode,
                      players=players, max_players=most, version="1.3.0.2")
    api.join(sid, headers, api.login("alice"))
    for sender, subject, body in (
            ("charlie", "ctf tonight?", "We need a sixth. 21:00 on Desert CTF?"),
            ("bob", "clan tag", "Accepted the invite, see you on the server."),
            ("nightowl", "gg", "Nice flag run on ac_desert!")):
        api.client.post("/v1/mail", headers=tokens[sender],
                        json={"to": "alice", "subject": subject, "body": body})


# the account pages, shot logged in as alice (the last is the shown mail, opened from the inbox)
ACCOUNT_PAGES = (("me", "/me"), ("mail", "/me/mail"), ("sessions", "/me/sessions"))


def shoot_account(pg: Any, url: str, label: str) -> None:
    """Sign-up form anonymously, then log alice in through the form and shoot her pages."""
    pg.goto(url + "/signup")
    pg.screenshot(path=str(OUT / f"signup-{label}.png"))
    pg.goto(url + "/login")
    pg.fill("input[name=name]", "alice")
    pg.fill("input[name=password]", "secret1")
    pg.click("form.account-form button[type=submit]")
    for page, path in ACCOUNT_PAGES:
        pg.goto(url + path)
        pg.screenshot(path=str(OUT / f"{page}-{label}.png"))


def main() -> int:
    missing = browser_missing()
    if missing:
        print(missing, file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    from wsgi import create_app

    with tempfile.TemporaryDirectory() as tmp:
        redis = EmbeddedRedis(tmp, appendonly=False).start()
        try:
            r = connect(redis.url)
            clock = Clock()
            app = create_app(make_config(redis.url), r, clock=clock)
            seed(Api(app.test_client()), clock)
            url, server = serve(app)
            OUT.mkdir(parents=True, exist_ok=True)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                for label, size in (("desktop", (1100, 560)), ("phone", (390, 760))):
                    ctx = browser.new_context(viewport={"width": size[0], "height": size[1]},
                                              device_scale_factor=1)
                    pg = ctx.new_page()
                    for page, path in (("servers", "/"), ("board", "/boards/ctf.ac_desert"),
                                       ("player", "/players/alice")):
                        pg.goto(url + path)
                        pg.screenshot(path=str(OUT / f"{page}-{label}.png"))
                    shoot_account(pg, url, label)
                    ctx.close()
                browser.close()
            server.shutdown()
        finally:
            redis.stop()
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
