"""The README's screenshots of the players' web: ``python -m tests.screenshots``.

Starts a throwaway embedded Redis and the app (as tests/test_web_pages.py does), seeds a small
demo world through the API, and writes desktop and 390 px phone shots of the three pages to
``docs/img/`` with Debian's chromium driven by Playwright.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from shared.embedded import EmbeddedRedis
from shared.redis_conn import connect
from tests.conftest import Api, make_config
from tests.test_web_pages import CHROMIUM, _browser_missing, serve

OUT = Path(__file__).resolve().parent.parent / "docs" / "img"

SERVERS = [  # name, host, port, map, mode, players, max
    ("Desert CTF #1 | EU", "ac.example.org", 28763, "ac_desert", "ctf",
     ["alice", "[ACE]bob", "charlie", "Zoë", "nightowl", "|KoS|frag"], 16),
    ("Pro TOSOK 24/7", "ac2.example.org", 28763, "ac_shine", "osok", ["sniper", "m4ster"], 8),
    ("Gema Heaven", "gema.example.net", 1999, "ac_gema_ultra", "ctf", ["climber"], 12),
    ("Full House TDM", "10.0.0.7", 28770, "ac_mines", "tdm", ["p1", "p2", "p3", "p4"], 4),
    ("Newbie Friendly DM", "ac.example.org", 28765, "ac_complex", "dm", [], 20),
]


def seed(api: Api) -> None:
    ids = []
    for name, host, port, map_, mode, players, most in SERVERS:
        sid, headers = api.server(name[:20])
        api.heartbeat(sid, headers, name=name, host=host, port=port, map=map_, mode=mode,
                      players=players, max_players=most, version="1.3.0.2")
        ids.append((sid, headers))
    sid, headers = ids[0]
    api.client.put("/v1/boards/ctf.ac_desert", json={"order": "desc", "operator": "best"},
                   headers=api.admin)
    api.client.put("/v1/boards/osok.ac_shine", json={"order": "desc", "operator": "best"},
                   headers=api.admin)
    for i, name in enumerate(["alice", "bob", "charlie", "nightowl", "viper", "ghost", "kilo"]):
        api.join(sid, headers, api.player(name))
        for board, score in (("ctf.ac_desert", 42 - 5 * i), ("osok.ac_shine", 17 + 3 * i)):
            api.client.post(f"/v1/boards/{board}/records", headers=headers,
                            json={"player": name, "score": score,
                                  "meta": {"flags": score // 4, "frags": score * 2}})
    api.join(sid, headers, api.login("alice"))


def main() -> int:
    missing = _browser_missing()
    if missing:
        print(missing, file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    from wsgi import create_app

    with tempfile.TemporaryDirectory() as tmp:
        redis = EmbeddedRedis(tmp, appendonly=False).start()
        try:
            r = connect(redis.url)
            app = create_app(make_config(redis.url), r)
            seed(Api(app.test_client()))
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
                    ctx.close()
                browser.close()
            server.shutdown()
        finally:
            redis.stop()
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
