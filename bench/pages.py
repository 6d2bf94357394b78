"""``python -m bench.pages [--long] [--profile PAGE]``: the players' web pages beside ``/readyz``.

Starts its own embedded Redis and the Procfile's ``web`` process (gunicorn, bench/stack.py),
seeds a world through the operations themselves (in-process, cheap password hashes):

- 200 servers with heartbeats (maps and modes varied, 0-16 players each, max 16), 1,000
  registered players online on them through ``presence.join`` and guests filling the rest;
- a weekly board ``ctf.ac_desert`` (seasons: its page reads ``season.list`` for the tabs) with
  one record for each of the 1,000 players, and 9 more boards
  (every player holds records on 3 boards, so a profile lists 3);

then measures, with the same load generator and connections, in rounds (each page once per
round, in turn, so a drift of the shared machine hits every page alike):

- ``GET /readyz`` (one Redis PING, no logic: the ceiling of a one-round-trip endpoint);
- ``GET /``: the server browser, all 200 live servers rendered;
- ``GET /boards/ctf.ac_desert``: the first page of the leaderboard (25 records), and the
  second page, through the ``cursor`` the first page's Next link carries;
- ``GET /players/<name>``: profiles of 200 different players (online, 3 records each);
- ``GET /boards``: the index of the 10 boards;
- logged in (the ``ssm_session`` cookie of 200 different players, each with 10 mails in their
  inbox, half read): ``GET /me`` (the account: as the profile, plus the session check and the
  unread count), ``GET /me/mail`` (the inbox's first page), ``GET /me/mail/<id>`` (one mail,
  marked read) and ``GET /me/sessions``. README "Web pages": a logged-in page may cost at most twice
  the profile page; the last lines print each one's cost beside the profile's.

Each page is first fetched once (200, the seeded rows shown) and its Redis round trips counted
in-process. Its figure is its requests/s over the /readyz requests/s of the same run (the mean over
the rounds of each), with the spread of the per-round ratios. Default: 3 rounds of 2 s (about a
minute with the seeding); ``--long``: 5 rounds of 5 s. ``--profile PAGE`` (``status``,
``board``, ``board2``, ``player``, ``readyz``) then samples the web workers with py-spy while
that page is under load (``bench/profile.py``; ``pip install py-spy``). See docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import http_load
from bench.stack import Stack, interrupt
from bench.world import Req, World, heartbeat_body
from shared import auth
from shared.config import Config
from shared.redis_conn import connect
from shared.registry import load

N_SERVERS = 200
N_PLAYERS = 1000
MAX_PLAYERS = 16
BOARD = "ctf.ac_desert"
N_PROFILES = 200
MAPS = ("ac_desert", "ac_depot", "ac_mines", "ac_complex", "ac_arid", "ac_shine", "ac_gothic",
        "ac_aqueous", "ac_keller", "ac_snow")
MODES = ("ctf", "tdm", "tosok", "htf", "dm", "lss")
# the other boards: every player holds a record on two of them (and on BOARD)
OTHER_BOARDS = tuple(f"{mode}.{m}" for mode, m in (
    ("ctf", "ac_depot"), ("ctf", "ac_mines"), ("tdm", "ac_desert"), ("tdm", "ac_complex"),
    ("tosok", "ac_arid"), ("htf", "ac_shine"), ("dm", "ac_gothic"), ("lss", "ac_keller"),
    ("frags", "total")))
N_ACCOUNTS = 200  # players whose logged-in pages are measured
MAILS_EACH = 10
PAGES = ("readyz", "status", "board", "board2", "player", "boards", "me", "mail", "mailread",
         "sessions")
LOGGED_IN = ("me", "mail", "mailread", "sessions")
COST_LIMIT = 2.0  # a logged-in page: at most twice the profile page's cost (README "Web pages")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class PageWorld:
    """The seeded world: servers with heartbeats, online players, boards with records."""

    def __init__(self, r: Any, config: Config, registry: dict, seed: int = 11):
        self.w = World(r, config, registry, prefix="pg", n_servers=0, n_players=0)
        self.rng = random.Random(seed)
        self.servers: list[tuple[str, str]] = []
        self.on: list[list[str]] = []  # names in each server's heartbeat (players, then guests)
        self.where: dict[str, int] = {}  # registered player -> server index
        self.players = [f"{self._nick(i)}" for i in range(N_PLAYERS)]
        self.accounts: list[str] = []  # the players whose logged-in pages are measured
        self.mail_ids: dict[str, list[str]] = {}

    def _nick(self, i: int) -> str:
        stem = ("Frag", "Sniper", "Ghost", "Rook", "Nova", "Vex", "Kilo", "Juno")[i % 8]
        return f"{stem}{i:04d}"[:15]

    def _beat(self, i: int) -> None:
        sid = self.servers[i][0]
        body = heartbeat_body(f"{MODES[i % len(MODES)].upper()} {MAPS[i % len(MAPS)]} #{i}",
                              self.on[i])
        body.update(map=MAPS[i % len(MAPS)], mode=MODES[i % len(MODES)],
                    max_players=MAX_PLAYERS, port=28763 + 10 * (i % 50),
                    host=f"ac{i // 50}.example.org", version="1.3.0.2")
        self.w.call("status.update", auth.Caller("server", sid), id=sid, **body)

    def heartbeat_all(self) -> None:
        for i in range(len(self.servers)):
            self._beat(i)

    def build(self) -> PageWorld:
        w, t0 = self.w, time.perf_counter()
        self.servers = [w.new_server(f"pages {i}") for i in range(N_SERVERS)]
        sizes = [self.rng.randint(0, MAX_PLAYERS) for _ in range(N_SERVERS)]
        slots = [i for i, n in enumerate(sizes) for _ in range(n)]
        if len(slots) < N_PLAYERS:
            raise RuntimeError(f"{len(slots)} slots for {N_PLAYERS} players")
        self.rng.shuffle(slots)
        self.on = [[] for _ in range(N_SERVERS)]
        for k, i in enumerate(slots):
            if k < N_PLAYERS:
                self.where[self.players[k]] = i
                self.on[i].append(self.players[k])
            else:
                self.on[i].append(f"guest{k}"[:15])
        for name in self.players:
            w.tokens[name] = w.new_player(name)
        self.heartbeat_all()
        for name, i in self.where.items():
            sid = self.servers[i][0]
            w.call("presence.join", auth.Caller("server", sid), id=sid, token=w.tokens[name])
        log(f"pages: {N_SERVERS} servers, {N_PLAYERS} players online "
            f"({len(slots) - N_PLAYERS} guests) in {time.perf_counter() - t0:.1f} s")
        for board in (BOARD, *OTHER_BOARDS):
            operator = "incr" if board.startswith("frags") else "best"
            w.call("board.create", auth.ADMIN_CALLER, board=board, order="desc",
                   operator=operator, **({"reset": "weekly"} if board == BOARD else {}))
        for k, name in enumerate(self.players):
            i = self.where[name]
            caller = auth.Caller("server", self.servers[i][0])
            for j, board in enumerate((BOARD, OTHER_BOARDS[k % 9], OTHER_BOARDS[(k + 4) % 9])):
                flags, frags = self.rng.randint(0, 12), self.rng.randint(0, 90)
                w.call("record.submit", caller, board=board, player=name,
                       score=frags * 10 + flags * 50 + j, meta={"flags": flags, "frags": frags})
        log(f"pages: {1 + len(OTHER_BOARDS)} boards, {3 * N_PLAYERS} records; seeded in "
            f"{time.perf_counter() - t0:.1f} s")
        self.accounts = self.rng.sample(self.players, N_ACCOUNTS)
        for name in self.accounts:
            ids = self.mail_ids[name] = []
            for j in range(MAILS_EACH):
                sender = self.players[(self.players.index(name) + 1 + j) % N_PLAYERS]
                ids.append(w.call("mail.send", auth.resolve(w.r, w.config, w.tokens[sender]),
                                  to=name, subject=f"rematch {j} on {MAPS[j % len(MAPS)]}?",
                                  body="Good game! Same map tonight? " * 3)["id"])
            for mail_id in ids[::2]:
                w.call("mail.read", auth.resolve(w.r, w.config, w.tokens[name]), id=mail_id)
        log(f"pages: {N_ACCOUNTS} accounts with {MAILS_EACH} mails each; seeded in "
            f"{time.perf_counter() - t0:.1f} s")
        return self

    def requests(self, base_url: str) -> dict[str, list[Req]]:
        """The request pool of each page; the board's second page via the first page's link."""
        first = _get(base_url, f"/boards/{BOARD}")
        found = re.search(r'rel="next" href="\?cursor=(\d+)"', first)
        if not found:
            raise RuntimeError("the board's first page has no Next link")
        profiles = self.rng.sample(self.players, N_PROFILES)

        def mine(path: Callable[[str], str]) -> list[Req]:
            return [Req("GET", path(name), {"Cookie": f"ssm_session={self.w.tokens[name]}"})
                    for name in self.accounts]

        return {"readyz": [Req("GET", "/readyz")], "status": [Req("GET", "/")],
                "board": [Req("GET", f"/boards/{BOARD}")],
                "board2": [Req("GET", f"/boards/{BOARD}?cursor={found.group(1)}")],
                "player": [Req("GET", f"/players/{name}") for name in profiles],
                "boards": [Req("GET", "/boards")],
                "me": mine(lambda name: "/me"), "mail": mine(lambda name: "/me/mail"),
                "mailread": mine(lambda name: f"/me/mail/{self.mail_ids[name][1]}"),
                "sessions": mine(lambda name: "/me/sessions")}


def _get(base_url: str, path: str, headers: dict[str, str] | None = None) -> str:
    req = urllib.request.Request(base_url + path, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        if resp.geturl() != base_url + path:
            raise RuntimeError(f"{path} was redirected to {resp.geturl()}")
        return resp.read().decode()


def check_pages(base_url: str, reqs: dict[str, list[Req]]) -> dict[str, dict[str, int]]:
    """Each page once over HTTP: answers 200 and shows the seeded world. Bytes and rows."""
    out = {}
    for name, pool in reqs.items():
        body = _get(base_url, pool[0].path, pool[0].headers)
        rows = body.count("<tr class=")
        out[name] = {"bytes": len(body.encode()), "rows": rows}
    want = {"status": N_SERVERS, "board": 25, "board2": 25, "mail": MAILS_EACH, "sessions": 1}
    bad = {k: (out[k]["rows"], n) for k, n in want.items() if out[k]["rows"] != n}
    if bad:
        raise RuntimeError(f"pages do not show the seeded world (rows, expected): {bad}")
    return out


def roundtrips(url: str, config: Config, reqs: dict[str, list[Req]]) -> dict[str, int]:
    """Redis round trips of each page (the most over its first requests), counted in-process
    as tests/test_roundtrips.py counts them, scripts preloaded (the steady state)."""
    from shared.redis_conn import counting_client, preload_scripts
    from wsgi import create_app

    r, counter = counting_client(url)
    client = create_app(config, r).test_client()
    preload_scripts(r)
    out = {}
    for name, pool in reqs.items():
        worst = 0
        for req in pool[:20]:
            counter.n = 0
            client.delete_cookie("ssm_session")  # the test client keeps its own jar
            if "Cookie" in req.headers:
                client.set_cookie(*req.headers["Cookie"].split("=", 1))
            resp = client.get(req.path)
            if resp.status_code != 200:
                raise RuntimeError(f"{req.path} answered {resp.status_code}")
            worst = max(worst, counter.n)
        out[name] = worst
    r.close()
    return out


def measure(base_url: str, reqs: dict[str, list[Req]], seconds: float, rounds: int,
            connections: int, tool: str,
            between: Callable[[], None] = lambda: None) -> dict[str, dict[str, Any]]:
    """Each page once per round, in turn; ``between`` runs before each round (heartbeats)."""
    runs: dict[str, list[http_load.Result]] = {k: [] for k in reqs}
    for pool in reqs.values():  # warm-up: templates compiled, scripts loaded, per worker
        http_load.run(base_url, pool, 1, connections, tool)
    for rnd in range(rounds):
        between()
        for name, pool in reqs.items():
            res = http_load.run(base_url, pool, seconds, connections, tool)
            runs[name].append(res)
            log(f"  round {rnd + 1}/{rounds} {name:7} {res.rps:7.0f} req/s  "
                f"p50 {res.p50_ms:6.1f} ms  p99 {res.p99_ms:6.1f} ms  non-2xx {res.non2xx}")
    ceiling = [r.rps for r in runs["readyz"]]
    out = {}
    for name, got in runs.items():
        rps = statistics.mean(r.rps for r in got)
        per_round = [r.rps / c for r, c in zip(got, ceiling, strict=True) if c]
        out[name] = {"rps": round(rps, 1),
                     "p50_ms": round(statistics.median(r.p50_ms for r in got), 2),
                     "p99_ms": round(statistics.median(r.p99_ms for r in got), 2),
                     "ratio": round(rps / statistics.mean(ceiling), 3),
                     "ratio_min": round(min(per_round), 3), "ratio_max": round(max(per_round), 3),
                     "errors": sum(r.non2xx + r.socket_errors for r in got),
                     "requests": sum(r.requests for r in got)}
    return out


def profile(stack: Stack, pool: list[Req], seconds: int, connections: int, tool: str,
            top: int = 15) -> str:
    import psutil

    from bench.profile import sample, summarize

    workers = [c.pid for c in psutil.Process(stack.pid("web")).children()]
    out = Path(tempfile.mkdtemp(prefix="ssm-prof-"))
    result: list[http_load.Result] = []
    load_thread = threading.Thread(target=lambda: result.append(
        http_load.run(stack.base_url, pool, seconds + 1, connections, tool)))
    load_thread.start()
    for p in sample(workers, seconds, out):
        p.wait()
    load_thread.join()
    return f"{result[0].rps:.0f} req/s under the profiler\n{summarize(out, top)}"


def print_table(figures: dict[str, dict[str, Any]], sizes: dict[str, dict[str, int]],
                reqs: dict[str, list[Req]], details: dict[str, Any]) -> None:
    print(f"\nSSMGlobal players' web pages ({details['rounds']} rounds of {details['seconds']} s,"
          f" {details['connections']} connections, load generator: {details['tool']})")
    print(f"\n{'page':34}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'ratio':>7}{'  (rounds)':12}"
          f"{'KiB':>6}{'RT':>4}{'errors':>7}")
    for name in PAGES:
        d, path = figures[name], reqs[name][0].path
        shown = {"player": "/players/<name>", "mailread": "/me/mail/<id>"}.get(name, path)
        shown += " (logged in)" if name in LOGGED_IN else ""
        print(f"{shown:34}{d['rps']:8.0f}{d['p50_ms']:8.1f}{d['p99_ms']:8.1f}{d['ratio']:7.2f}"
              f"  ({d['ratio_min']:.2f}-{d['ratio_max']:.2f}){sizes[name]['bytes'] / 1024:6.1f}"
              f"{sizes[name]['roundtrips']:4}{d['errors']:7}")
    print("(ratio: page req/s / GET /readyz req/s, means over the rounds; in brackets the "
          "spread of the per-round ratios; KiB: the page's size; RT: Redis round trips)")
    profile_rps = figures["player"]["rps"]
    print(f"\nlogged-in pages, cost per request beside the profile's (limit {COST_LIMIT:.0f}x):")
    for name in LOGGED_IN:
        cost = profile_rps / figures[name]["rps"]
        print(f"  {name:9}{cost:6.2f}x  {'ok' if cost <= COST_LIMIT else 'OVER THE LIMIT'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pages", description=__doc__.split("\n")[0])
    ap.add_argument("--long", action="store_true", help="5 rounds of 5 s (default 3 of 2 s)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--tool", choices=("auto", "wrk", "python"), default="auto",
                    help="HTTP load generator (auto: wrk when installed)")
    ap.add_argument("--profile", choices=PAGES, default=None,
                    help="then sample the web workers with py-spy under this page's load")
    ap.add_argument("--out", default=None, help="also write the figures to this JSON file")
    opts = ap.parse_args(argv)
    seconds, rounds = (5, 5) if opts.long else (2, 3)
    details = {"rounds": rounds, "seconds": seconds, "connections": opts.connections,
               "tool": http_load.tool_name(opts.tool), "servers": N_SERVERS,
               "players": N_PLAYERS, "board_records": N_PLAYERS}
    started = time.monotonic()
    signal.signal(signal.SIGTERM, interrupt)
    stack = Stack(only=("web",))
    try:
        stack.start()
        config = Config.from_env(stack.env)
        world = PageWorld(connect(stack.redis_url), config, load()).build()
        reqs = world.requests(stack.base_url)
        try:
            sizes = check_pages(stack.base_url, reqs)
        except OSError:
            log(stack.log_tail("web", 60))
            raise
        for name, n in roundtrips(stack.redis_url, config, reqs).items():
            sizes[name]["roundtrips"] = n
        figures = measure(stack.base_url, reqs, seconds, rounds, opts.connections, opts.tool,
                          between=world.heartbeat_all)  # live for STATUS_TTL (90 s) each
        print_table(figures, sizes, reqs, details)
        if opts.out:
            Path(opts.out).write_text(json.dumps(
                {"pages": figures, "sizes": sizes, "details": details}, indent=1) + "\n")
        if opts.profile:
            world.heartbeat_all()
            print(f"\n== profile of {opts.profile} ({reqs[opts.profile][0].path}): "
                  + profile(stack, reqs[opts.profile], 5, opts.connections, opts.tool))
    except KeyboardInterrupt:
        log("pages: interrupted")
        return 130
    finally:
        stack.stop()
    log(f"pages: done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
