"""``python -m bench.pages [--long] [--profile PAGE]``: the players' web pages beside ``/readyz``.

Starts its own embedded Redis and the Procfile's ``web`` process (gunicorn, bench/stack.py),
seeds a world through the operations themselves (in-process, cheap password hashes):

- 200 servers with heartbeats (maps and modes varied, 0-16 players each, max 16), 1,000
  registered players online on them through ``presence.join`` and guests filling the rest;
- a weekly board ``ctf.ac_desert`` (seasons: its page reads ``season.list`` for the tabs) with
  one record for each of the 1,000 players, and 9 more boards
  (every player holds records on 3 boards, so a profile lists 3);

then measures, with the same load generator and connections, in rounds (each page once per
round, in turn, so a drift of the shared machine hits every page alike), each page as plain
HTML and compressed (the ``Accept-Encoding`` a browser sends; Flask-Compress picks zstd):

- ``GET /readyz`` (one Redis PING, no logic: the ceiling of a one-round-trip endpoint);
- ``GET /``: the server browser, all 200 live servers listed (the list rendered once per
  version and filter, shared/web/pages.py), and ``GET /fragments/servers``, the list the
  page's script refreshes; the fragment also with ``If-None-Match`` set to its ETag as read
  just before (the 304 rate: a heartbeat round in between may change it);
- ``GET /boards/ctf.ac_desert``: the first page of the leaderboard (25 records), and the
  second page, through the ``cursor`` the first page's Next link carries;
- ``GET /players/<name>``: profiles of 200 different players (online, 3 records each);
- ``GET /boards``: the index of the 10 boards;
- logged in (the ``ssm_session`` cookie of 200 different players, each with 10 mails in their
  inbox, half read): ``GET /me`` (the account: as the profile, plus the session check and the
  unread count), ``GET /me/mail`` (the inbox's first page), ``GET /me/mail/<id>`` (one mail,
  marked read) and ``GET /me/sessions``. README "Web pages": a logged-in page may cost at most twice
  the profile page; the last lines print each one's cost beside the profile's.

then adds 800 servers (1,000 live) and measures ``/readyz``, ``/`` and the fragment again.

Each page is first fetched once (200, the seeded rows shown; its size plain, gzip and as a
browser gets it), its Redis round trips counted in-process, and its CPU time per request
measured in-process (``cpu_costs``: robust to a busy machine, unlike requests/s). Its figure
is its requests/s over the /readyz requests/s of the same phase (the mean over the rounds of
each), with the spread of the per-round ratios. Default: 3 rounds of 2 s (about three
minutes with the seeding); ``--long``: 5 rounds of 5 s. ``--profile PAGE`` (``status``,
``board``, ``board2``, ``player``, ``readyz``) then samples the web workers with py-spy while
that page is under load (``bench/profile.py``; ``pip install py-spy``). See docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import gzip
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
KEEP_LIVE = 30.0  # seconds between heartbeat rounds while measuring (STATUS_TTL is 90)
MAPS = ("ac_desert", "ac_depot", "ac_mines", "ac_complex", "ac_arid", "ac_shine", "ac_gothic",
        "ac_aqueous", "ac_keller", "ac_snow")
MODES = ("ctf", "tdm", "tosok", "htf", "dm", "lss")
# the other boards: every player holds a record on two of them (and on BOARD)
OTHER_BOARDS = tuple(f"{mode}.{m}" for mode, m in (
    ("ctf", "ac_depot"), ("ctf", "ac_mines"), ("tdm", "ac_desert"), ("tdm", "ac_complex"),
    ("tosok", "ac_arid"), ("htf", "ac_shine"), ("dm", "ac_gothic"), ("lss", "ac_keller"),
    ("frags", "total")))
N_MORE = 800  # the second phase: 1,000 live servers
BROWSER = "gzip, deflate, br, zstd"  # what Chromium sends
N_ACCOUNTS = 200  # players whose logged-in pages are measured
MAILS_EACH = 10
PAGES = ("readyz", "status", "fragment", "board", "board2", "player", "boards", "me", "mail",
         "mailread", "sessions")
LOGGED_IN = ("me", "mail", "mailread", "sessions")
COST_LIMIT = 2.0  # a logged-in page: at most twice the profile page's cost (README "Web pages")
PAGES_1000 = ("readyz", "status", "fragment")


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

    def grow(self, more: int) -> None:
        """``more`` servers with heartbeats (guests only), for the 1,000-server browser."""
        t0, n = time.perf_counter(), len(self.servers)
        for i in range(n, n + more):
            self.servers.append(self.w.new_server(f"pages {i}"))
            self.on.append([f"g{i}x{k}"[:15] for k in range(self.rng.randint(0, MAX_PLAYERS))])
            self._beat(i)
        log(f"pages: {len(self.servers)} servers live ({time.perf_counter() - t0:.1f} s)")

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
                "fragment": [Req("GET", "/fragments/servers")],
                "board": [Req("GET", f"/boards/{BOARD}")],
                "board2": [Req("GET", f"/boards/{BOARD}?cursor={found.group(1)}")],
                "player": [Req("GET", f"/players/{name}") for name in profiles],
                "boards": [Req("GET", "/boards")],
                "me": mine(lambda name: "/me"), "mail": mine(lambda name: "/me/mail"),
                "mailread": mine(lambda name: f"/me/mail/{self.mail_ids[name][1]}"),
                "sessions": mine(lambda name: "/me/sessions")}


def _get(base_url: str, path: str) -> str:
    return _fetch(base_url, path)[0].decode()


def _fetch(base_url: str, path: str, encoding: str = "",
           headers: dict[str, str] | None = None) -> tuple[bytes, dict[str, str]]:
    """(the body as it travelled, the headers); a redirect is an error (a page not shown)."""
    ask = urllib.request.Request(base_url + path, headers={
        **(headers or {}), "Accept-Encoding": encoding or "identity"})
    with urllib.request.urlopen(ask, timeout=10) as resp:
        if resp.geturl() != base_url + path:
            raise RuntimeError(f"{path} was redirected to {resp.geturl()}")
        return resp.read(), {k.lower(): v for k, v in resp.headers.items()}


def _same(page: bytes) -> bytes:
    """A page less what two answers render apart: the clock (ages, data-now), the CSRF token
    (masked afresh in each answer)."""
    page = re.sub(rb'data-now="[0-9.]+"', b"", page)
    page = re.sub(rb'name="csrf" value="[^"]*"', b"", page)
    return re.sub(rb">[0-9]+ (s|min|h|d) ago<", b"><", page)


def compressed(pool: list[Req]) -> list[Req]:
    return [Req(q.method, q.path, {**q.headers, "Accept-Encoding": BROWSER}) for q in pool]


def check_pages(base_url: str, reqs: dict[str, list[Req]],
                servers: int = N_SERVERS) -> dict[str, dict[str, Any]]:
    """Each page once over HTTP: answers 200 and shows the seeded world. Bytes (plain, gzip,
    as a browser gets it) and rows."""
    out: dict[str, dict[str, Any]] = {}
    for name, pool in reqs.items():
        head0 = pool[0].headers
        body, _ = _fetch(base_url, pool[0].path, headers=head0)
        gz, head = _fetch(base_url, pool[0].path, "gzip", head0)
        if head.get("content-encoding") == "gzip" and _same(gzip.decompress(gz)) != _same(body):
            raise RuntimeError(f"{pool[0].path}: the gzip answer is not the page")
        wire, head = _fetch(base_url, pool[0].path, BROWSER, head0)
        out[name] = {"bytes": len(body), "gzip_bytes": len(gz), "wire_bytes": len(wire),
                     "encoding": head.get("content-encoding", "none"),
                     "rows": body.decode().count("<tr class=")}
    want = {"status": servers, "fragment": servers, "board": 25, "board2": 25,
            "mail": MAILS_EACH, "sessions": 1}
    bad = {k: (out[k]["rows"], n) for k, n in want.items() if k in out and out[k]["rows"] != n}
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
            client.delete_cookie("ssm_session")  # the test client keeps its own jar
            if "Cookie" in req.headers:
                client.set_cookie(*req.headers["Cookie"].split("=", 1))
            counter.n = 0
            resp = client.get(req.path)
            if resp.status_code != 200:
                raise RuntimeError(f"{req.path} answered {resp.status_code}")
            worst = max(worst, counter.n)
        out[name] = worst
    r.close()
    return out


def cpu_costs(url: str, config: Config, reqs: dict[str, list[Req]], reps: int = 15,
              each: int = 40) -> dict[str, dict[str, float]]:
    """CPU milliseconds of the web process per request, in-process (Flask's test client, one
    Redis client), plain and compressed: the least over ``reps`` interleaved batches of
    ``each`` requests, by ``time.process_time`` (what this process spent, so a busy shared
    machine moves it far less than it moves requests/s). Redis' own time is not in it."""
    from wsgi import create_app

    client = create_app(config, connect(url)).test_client()
    best: dict[str, float] = {}
    for _ in range(reps):
        for name, pool in reqs.items():
            for key, headers in ((name, {}), (f"{name}.z", {"Accept-Encoding": BROWSER})):
                t0 = time.process_time()
                for i in range(each):
                    q = pool[i % len(pool)]
                    client.delete_cookie("ssm_session")  # the test client keeps its own jar
                    if "Cookie" in q.headers:
                        client.set_cookie(*q.headers["Cookie"].split("=", 1))
                    client.get(q.path, headers=headers)
                ms = (time.process_time() - t0) / each * 1000
                best[key] = min(best.get(key, ms), ms)
    ceiling = best["readyz"]
    return {k: {"cpu_ms": round(v, 3), "cpu_ratio": round(ceiling / v, 2)}
            for k, v in best.items()}


def measure(base_url: str, reqs: dict[str, list[Req]], seconds: float, rounds: int,
            connections: int, tool: str,
            between: Callable[[], None] = lambda: None) -> dict[str, dict[str, Any]]:
    """Each page plain and compressed (``<page>.z``), once per round, in turn, plus the
    fragment with the ETag read just before (``fragment.304``); ``between`` (every server's
    heartbeat) runs before a page once ``KEEP_LIVE`` seconds passed since it last ran, so no
    server lapses even in a ``--long`` round (about two minutes)."""
    runs: dict[str, list[http_load.Result]] = {}
    pools = {}
    for name, pool in reqs.items():
        pools[name] = pool
        if name != "readyz":
            pools[f"{name}.z"] = compressed(pool)
    for pool in pools.values():  # warm-up: templates compiled, scripts loaded, per worker
        http_load.run(base_url, pool, 1, connections, tool)
    beat = -KEEP_LIVE
    for rnd in range(rounds):
        todo = list(pools.items())
        if "fragment" in reqs:
            todo.append(("fragment.304", []))
        for name, pool in todo:
            if time.monotonic() - beat >= KEEP_LIVE:  # a --long round outlasts STATUS_TTL
                between()
                beat = time.monotonic()
            count = None
            if name == "fragment.304":
                etag = _fetch(base_url, reqs["fragment"][0].path, BROWSER)[1]["etag"]
                pool = [Req("GET", reqs["fragment"][0].path,
                            {"Accept-Encoding": BROWSER, "If-None-Match": etag})]
                count = 304
            res = http_load.run(base_url, pool, seconds, connections, tool, count_status=count)
            runs.setdefault(name, []).append(res)
            extra = f"  304s {res.counted / max(1, res.requests):.0%}" if count else ""
            log(f"  round {rnd + 1}/{rounds} {name:13} {res.rps:7.0f} req/s  "
                f"p50 {res.p50_ms:6.1f} ms  p99 {res.p99_ms:6.1f} ms  non-2xx {res.non2xx}"
                f"{extra}")
    ceiling = [r.rps for r in runs["readyz"]]
    out = {}
    for name, got in runs.items():
        rps = statistics.mean(r.rps for r in got)
        per_round = [r.rps / c for r, c in zip(got, ceiling, strict=True) if c]
        requests = sum(r.requests for r in got)
        # wrk counts only statuses above 399 as errors; the Python client counts every non-2xx
        not_ok = sum(r.non2xx + r.socket_errors - (r.counted if r.tool == "python" else 0)
                     for r in got)
        counted = sum(r.counted for r in got)
        out[name] = {"rps": round(rps, 1),
                     "p50_ms": round(statistics.median(r.p50_ms for r in got), 2),
                     "p99_ms": round(statistics.median(r.p99_ms for r in got), 2),
                     "ratio": round(rps / statistics.mean(ceiling), 3),
                     "ratio_min": round(min(per_round), 3), "ratio_max": round(max(per_round), 3),
                     "errors": not_ok, "requests": requests,
                     **({"rate_304": round(counted / max(1, requests), 3)}
                        if name == "fragment.304" else {})}
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


def print_table(title: str, figures: dict[str, dict[str, Any]],
                sizes: dict[str, dict[str, Any]], reqs: dict[str, list[Req]],
                details: dict[str, Any]) -> None:
    print(f"\n{title} ({details['rounds']} rounds of {details['seconds']} s, "
          f"{details['connections']} connections, load generator: {details['tool']})")
    print(f"\n{'page':40}{'req/s':>8}{'p99 ms':>8}{'ratio':>7}{'  (rounds)':12}{'KiB':>7}"
          f"{'RT':>4}{'errors':>7}")
    for name in [n for n in PAGES if n in reqs]:
        path = {"player": "/players/<name>", "mailread": "/me/mail/<id>"}.get(
            name, reqs[name][0].path) + (" (logged in)" if name in LOGGED_IN else "")
        size = sizes[name]
        for key, shown, kib in ((name, path, size["bytes"]),
                                (f"{name}.z", f"  compressed ({size['encoding']})",
                                 size["wire_bytes"]),
                                ("fragment.304" if name == "fragment" else "", "  If-None-Match"
                                 " (304 rate {rate:.0%})", 0)):
            d = figures.get(key)
            if d is None:
                continue
            shown = shown.format(rate=d.get("rate_304", 0))
            print(f"{shown:40}{d['rps']:8.0f}{d['p99_ms']:8.1f}{d['ratio']:7.2f}"
                  f"  ({d['ratio_min']:.2f}-{d['ratio_max']:.2f}){kib / 1024:7.1f}"
                  f"{size.get('roundtrips', 0):4}{d['errors']:7}")
    if "player" in figures and all(n in figures for n in LOGGED_IN):
        profile_rps = figures["player"]["rps"]
        print(f"\nlogged-in pages, cost per request beside the profile's (limit "
              f"{COST_LIMIT:.0f}x):")
        for name in LOGGED_IN:
            cost = profile_rps / figures[name]["rps"]
            print(f"  {name:9}{cost:6.2f}x  {'ok' if cost <= COST_LIMIT else 'OVER THE LIMIT'}")
    cpu = details.get("cpu")
    if cpu:
        print(f"\nCPU per request in-process (least of 15 interleaved batches): /readyz "
              f"{cpu['readyz']['cpu_ms']:.3f} ms; " + "; ".join(
                  f"{k} {v['cpu_ms']:.3f} ms ({v['cpu_ratio']:.2f})" for k, v in cpu.items()
                  if k not in ("readyz", "readyz.z")))
    print("(ratio: page req/s / GET /readyz req/s, means over the rounds; in brackets the "
          "spread of the per-round ratios; KiB: the page's size, as it travels; gzip sizes in "
          "the JSON; RT: Redis round trips)")


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
        details["cpu"] = cpu_costs(stack.redis_url, config, reqs)
        figures = measure(stack.base_url, reqs, seconds, rounds, opts.connections, opts.tool,
                          between=world.heartbeat_all)  # live for STATUS_TTL (90 s) each
        print_table("SSMGlobal players' web pages, 200 live servers", figures, sizes, reqs,
                    details)
        world.grow(N_MORE)
        world.heartbeat_all()  # the first 200 too: the measuring took longer than STATUS_TTL
        big = {k: reqs[k] for k in PAGES_1000}
        sizes_1000 = check_pages(stack.base_url, big, N_SERVERS + N_MORE)
        for name in PAGES_1000:
            sizes_1000[name]["roundtrips"] = sizes[name]["roundtrips"]
        world.heartbeat_all()
        details_1000 = {**details, "cpu": cpu_costs(stack.redis_url, config, big)}
        figures_1000 = measure(stack.base_url, big, seconds, rounds, opts.connections,
                               opts.tool, between=world.heartbeat_all)
        print_table(f"The server browser with {N_SERVERS + N_MORE} live servers", figures_1000,
                    sizes_1000, big, details_1000)
        if opts.out:
            Path(opts.out).write_text(json.dumps(
                {"pages": figures, "sizes": sizes, "pages_1000": figures_1000,
                 "sizes_1000": sizes_1000, "details": details, "details_1000": details_1000},
                indent=1) + "\n")
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
