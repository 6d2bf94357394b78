"""Bench fixtures and one successful request per operation.

Fixtures are made in-process through the real operations (``shared.dispatch.run``) against the
stack's Redis, with a cheap password-hash cost so thousands of players take seconds: a login
verifies against the cost stored in the hash, so cheap fixtures do not change what a request
costs, except the login player of scenario 6, registered at the configured cost.

:func:`requests_for` gives, for any registered operation, a list of requests that each answer
2xx. Operations that consume what they act on (logout, delete, password change) get a pool of
``n`` distinct requests; ``%N%`` in a path or body is replaced by a unique token per request
(register). Operations not in the table get a request derived from their declared fields.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared import auth, keys
from shared.config import Config
from shared.dispatch import Ctx, run
from shared.redis_conn import queue_for
from shared.registry import Operation

PW = "benchpass1"
PW2 = "benchpass2"
KDF_BOUND = ("player.register", "session.login", "player.password")


@dataclass
class Req:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # JSON-able, or None
    unique: bool = False  # "%N%" in path/body must be replaced per request

    def body_bytes(self, token: str = "") -> bytes | None:
        if self.body is None:
            return None
        text = json.dumps(self.body)
        return (text.replace("%N%", token) if self.unique else text).encode()

    def url_path(self, token: str = "") -> str:
        return self.path.replace("%N%", token) if self.unique else self.path

    def all_headers(self) -> dict[str, str]:
        h = dict(self.headers)
        if self.body is not None:
            h["Content-Type"] = "application/json"
        return h


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def heartbeat_body(name: str, players: list[str]) -> dict[str, Any]:
    return {"name": name, "host": "127.0.0.1", "port": 28763, "map": "ac_desert", "mode": "ctf",
            "players": players, "max_players": max(16, len(players)), "version": "1.3",
            "public": True}


class World:
    """Servers, players, boards, mail and messages made through the operations themselves."""

    def __init__(self, r: Any, config: Config, registry: dict[str, Operation], prefix: str = "b",
                 n_servers: int = 6, n_players: int = 40):
        self.r, self.registry, self.prefix = r, registry, prefix
        self.tag_base = secrets.randbelow(36**6)  # clan tags: see _tag
        self.config = config
        self.queue = queue_for(config, r)  # on a cluster, RQ's own Redis (as the web has)
        self.cheap = dataclasses.replace(config, scrypt_log2_n=4, register_limit_per_ip_hour=0,
                                         mailbox_max=10**7, mail_unread_per_sender_max=0,
                                         message_send_budget=0)
        self.admin = bearer(config.admin_token or "")
        self.servers: list[tuple[str, str]] = []  # (id, key)
        self.tokens: dict[str, str] = {}  # player name -> session token
        self.players = [f"{prefix}p{i}" for i in range(n_players)]
        self.n_servers = n_servers
        self.mail_ids: list[str] = []
        self.login_names: list[str] = []  # registered at the configured cost
        self._seq = 0

    # --- calling operations in-process -----------------------------------------------------
    def call(self, op_name: str, caller: auth.Caller, config: Config | None = None, /,
             **raw: Any) -> Any:
        ctx = Ctx(self.r, config or self.cheap, caller, ip="127.0.0.2", queue=self.queue)
        return run(self.registry[op_name], ctx, raw).body

    def server_caller(self, i: int) -> auth.Caller:
        return auth.Caller("server", self.servers[i][0], f"{self.prefix}s{i}")

    def new_server(self, name: str) -> tuple[str, str]:
        body = self.call("server.create", auth.ADMIN_CALLER, name=name)
        return body["id"], body["key"]

    def new_player(self, name: str, config: Config | None = None) -> str:
        """Register ``name`` and log in: the session token."""
        self.call("player.register", auth.ANONYMOUS, config, name=name, password=PW)
        return self.login(name)

    def login(self, name: str) -> str:
        return self.call("session.login", auth.ANONYMOUS, name=name, password=PW)["token"]

    def uniq(self) -> int:
        self._seq += 1
        return self._seq

    # --- the fixture set --------------------------------------------------------------------
    def build(self) -> World:
        p = self.prefix
        self.servers = [self.new_server(f"{p}s{i}") for i in range(self.n_servers)]
        for name in self.players:
            self.tokens[name] = self.new_player(name)
        self.refresh()  # heartbeats; half the players join server 0
        online = self.players[:len(self.players) // 2]
        self.call("board.create", auth.ADMIN_CALLER, board=f"{p}.best", order="desc",
                  operator="best")
        self.call("board.create", auth.ADMIN_CALLER, board=f"{p}.incr", order="desc",
                  operator="incr", reset="weekly")  # a board with seasons
        for i, name in enumerate(online):
            for board in (f"{p}.best", f"{p}.incr"):
                self.call("record.submit", self.server_caller(0), board=board, player=name,
                          score=1000 + i * 7, meta={"map": "ac_desert"})
        for i in range(20):  # mail for player 1 from player 2
            body = self.call("mail.send", self.player_caller(self.players[2]), to=self.players[1],
                             subject=f"hello {i}", body="a bench mail body " * 4)
            self.mail_ids.append(body["id"])
        for k in ("volume", "crosshair", "team"):
            self.call("player.settings.set", self.player_caller(self.players[0]),
                      name=self.players[0], key=k, value={"v": k})
            self.call("server.settings.set", self.server_caller(0), id=self.servers[0][0],
                      key=k, value={"v": k})
        for i in range(10):  # a short inbox for server 3
            self.call("message.send", self.server_caller(1), to=self.servers[3][0],
                      body=f"bench message {i}")
        self.call("channel.join", self.server_caller(0), id=self.servers[0][0],
                  channel=f"{p}chan")
        return self

    def login_pool(self, n: int = 24) -> list[str]:
        """Players registered at the CONFIGURED cost, for login runs (made once, ~40 ms each)."""
        while len(self.login_names) < n:
            name = f"{self.prefix}login{len(self.login_names)}"
            self.call("player.register", auth.ANONYMOUS, self.config, name=name, password=PW)
            self.login_names.append(name)
        return self.login_names[:n]

    def player_caller(self, name: str) -> auth.Caller:
        return auth.resolve(self.r, self.config, self.tokens[name])

    def refresh(self) -> None:
        """Heartbeat every fixture server (presence and records need a live server). When
        server 0 had lapsed (scenarios longer than STATUS_TTL ran since), the worker's sweep
        marked its players offline: join them again."""
        beat = self.r.zscore(keys.status_live(), self.servers[0][0])
        lapsed = beat is None or beat < (self.r.time()[0] - self.config.status_ttl + 5) * 1000
        online = self.players[:len(self.players) // 2]
        for i, (sid, _) in enumerate(self.servers):
            self.call("status.update", self.server_caller(i), id=sid,
                      **heartbeat_body(f"{self.prefix} bench {i}", online if i == 0 else []))
        if lapsed:
            for name in online:
                self.call("presence.join", self.server_caller(0), id=self.servers[0][0],
                          token=self.tokens[name])


# --- one request per operation -----------------------------------------------------------------
def _s(w: World, i: int) -> dict[str, str]:
    return bearer(w.servers[i][1])


def _p(w: World, name: str) -> dict[str, str]:
    return bearer(w.tokens[name])


def _logout(w: World, n: int) -> list[Req]:
    name = f"{w.prefix}out{w.uniq()}"
    w.new_player(name)
    return [Req("DELETE", "/v1/sessions/current", bearer(w.login(name))) for _ in range(n)]


def _password(w: World, n: int) -> list[Req]:
    out = []
    for _ in range(n):
        name = f"{w.prefix}pw{w.uniq()}"
        token = w.new_player(name)
        out.append(Req("PUT", f"/v1/players/{name}/password", bearer(token),
                       {"old": PW, "new": PW2}))
    return out


def _player_delete(w: World, n: int) -> list[Req]:
    out = []
    for _ in range(n):
        name = f"{w.prefix}del{w.uniq()}"
        w.call("player.register", auth.ANONYMOUS, name=name, password=PW)
        out.append(Req("DELETE", f"/v1/players/{name}", w.admin))
    return out


def _server_delete(w: World, n: int) -> list[Req]:
    ids = [w.new_server(f"{w.prefix} doomed")[0] for _ in range(n)]
    return [Req("DELETE", f"/v1/servers/{sid}", w.admin) for sid in ids]


def _mail_delete(w: World, n: int) -> list[Req]:
    name = f"{w.prefix}md{w.uniq()}"
    token = w.new_player(name)
    sender = w.player_caller(w.players[2])
    ids = [w.call("mail.send", sender, to=name, body="to be deleted")["id"] for _ in range(n)]
    return [Req("DELETE", f"/v1/mail/{mid}", bearer(token)) for mid in ids]


def _login(w: World) -> list[Req]:
    """Logins a game server makes for its players (with its key, as the mod does), cycling
    over distinct players: the per-name and per-address lockouts count attempts in flight, so
    one name or one keyless address cannot have many logins in flight at once."""
    return [Req("POST", "/v1/sessions", _s(w, 5), {"name": name, "password": PW})
            for name in w.login_pool()]


def _rotate(w: World, n: int) -> list[Req]:
    sid, _ = w.new_server(f"{w.prefix} rotating")
    return [Req("POST", f"/v1/servers/{sid}/key", w.admin)]


def _tail(w: World, i: int, count: int = 10) -> str:
    """A cursor from which server ``i`` reads the newest ``count`` entries of its inbox, as a
    server that keeps up does (from "0" it would read up to 100 of whatever the bench's
    earlier operations pushed, e.g. every ban)."""
    newest = w.r.xrevrange(keys.inbox(w.servers[i][0]), count=count + 1)
    return newest[-1][0] if len(newest) > count else "0"


def _net(w: World) -> str:
    """An address no other ban of the run names (198.18.0.0/15, the benchmarking range): bans
    of one address share one index entry, which thousands of bench bans would make
    unrealistically long."""
    i = w.uniq() % 2**17
    return f"198.{18 + i // 65536}.{i // 256 % 256}.{i % 256}"


def _ban_lift(w: World, n: int) -> list[Req]:
    ids = [w.call("ban.create", auth.ADMIN_CALLER, ip=_net(w), reason="to lift")["id"]
           for _ in range(n)]
    return [Req("DELETE", f"/v1/bans/{ban_id}?reason=bench", w.admin) for ban_id in ids]


def _record_void(w: World, n: int) -> list[Req]:
    out = []
    for _ in range(n):
        name = f"{w.prefix}void{w.uniq()}"
        token = w.new_player(name)
        w.call("presence.join", w.server_caller(0), id=w.servers[0][0], token=token)
        w.call("record.submit", w.server_caller(0), board=f"{w.prefix}.best", player=name,
               score=1)
        out.append(Req("DELETE", f"/v1/boards/{w.prefix}.best/records/{name}?reason=bench",
                       w.admin))
    return out


def _tag(w: World, kind: str) -> str:
    """A clan tag no earlier world on the same Redis used (tags are global, 2-7 characters, so
    they cannot carry the world's prefix): ``kind`` + 6 base-36 digits of the world's random
    base plus a counter."""
    n = (w.tag_base + w.uniq()) % 36**6
    digits = ""
    for _ in range(6):
        n, d = divmod(n, 36)
        digits += "0123456789abcdefghijklmnopqrstuvwxyz"[d]
    return kind + digits


def _clan(w: World, owner: str, members: tuple[str, ...] = ()) -> str:
    """A new clan owned by ``owner`` (a new player), with new players as members: its tag."""
    tag = _tag(w, "c")
    w.tokens[owner] = w.new_player(owner)
    w.call("clan.create", w.player_caller(owner), tag=tag, name="bench clan")
    for name in members:
        w.tokens[name] = w.new_player(name)
        w.call("clan.invite", w.player_caller(owner), tag=tag, name=name)
        w.call("clan.accept", w.player_caller(name), tag=tag)
    return tag


def _clan_op(w: World, n: int, op: str) -> list[Req]:
    """Requests for a clan operation or name.check, each on a clan of its own."""
    out = []
    for _ in range(n):
        i = w.uniq()
        owner, member, other = f"{w.prefix}co{i}", f"{w.prefix}cm{i}", f"{w.prefix}cx{i}"
        if op == "clan.create":
            w.tokens[owner] = w.new_player(owner)
            out.append(Req("PUT", f"/v1/clans/{_tag(w, 'n')}", _p(w, owner), {"name": "bench"}))
            continue
        tag = _clan(w, owner, (member,))
        w.tokens[other] = w.new_player(other)
        if op == "clan.accept":
            w.call("clan.invite", w.player_caller(owner), tag=tag, name=other)
        out.append({
            "clan.get": Req("GET", f"/v1/clans/{tag}"),
            "clan.invite": Req("PUT", f"/v1/clans/{tag}/members/{other}", _p(w, owner)),
            "clan.accept": Req("POST", f"/v1/clans/{tag}/join", _p(w, other)),
            "clan.remove": Req("DELETE", f"/v1/clans/{tag}/members/{member}", _p(w, owner)),
            "clan.delete": Req("DELETE", f"/v1/clans/{tag}", _p(w, owner)),
            "clan.transfer": Req("PUT", f"/v1/clans/{tag}/owner", w.admin, {"player": member}),
            "name.check": Req("GET", f"/v1/names/check?nick=[{tag}]x&player={member}",
                              _s(w, 0)),
        }[op])
    return out


# a literal public address: a name would measure this machine's resolver (offline here, a
# failed lookup takes ~40 ms) rather than webhook.create
HOOK_URL = "https://93.184.215.14/ssm"
HOOK_EVENTS = ["season.ended"]  # an event the bench never causes: its webhooks get no deliveries


def _webhooks(w: World, n: int) -> list[str]:
    """``n`` new webhooks (for the operations that act on one)."""
    return [w.call("webhook.create", auth.ADMIN_CALLER, url=HOOK_URL,
                   events=HOOK_EVENTS)["id"] for _ in range(n)]


def table(w: World) -> dict[str, Callable[[int], list[Req]]]:
    """Operation name -> (n -> requests). Each request answers 2xx when run once."""
    p, (s0, s1, s2, s4) = w.prefix, [w.servers[i][0] for i in (0, 1, 2, 4)]
    p0, p1, p2 = w.players[0], w.players[1], w.players[2]
    one = lambda *a, **k: (lambda n: [Req(*a, **k)])  # noqa: E731
    return {
        "player.register": one("POST", "/v1/players", {}, {"name": f"r{p}%N%", "password": PW},
                               unique=True),
        "session.login": lambda n: _login(w),
        "session.logout": lambda n: _logout(w, n),
        "player.get": one("GET", f"/v1/players/{p0}"),
        "player.password": lambda n: _password(w, n),
        "player.delete": lambda n: _player_delete(w, n),
        "player.settings.get": one("GET", f"/v1/players/{p0}/settings", _p(w, p0)),
        "player.settings.set": one("PUT", f"/v1/players/{p0}/settings/volume", _p(w, p0),
                                   {"value": {"music": 0.5, "fx": 0.8}}),
        "player.settings.delete": one("DELETE", f"/v1/players/{p0}/settings/unset", _p(w, p0)),
        "server.create": one("POST", "/v1/servers", w.admin, {"name": f"{p} created"}),
        "server.rotate_key": lambda n: _rotate(w, n),
        "server.delete": lambda n: _server_delete(w, n),
        "server.settings.get": one("GET", f"/v1/servers/{s0}/settings", _s(w, 0)),
        "server.settings.set": one("PUT", f"/v1/servers/{s0}/settings/motd", _s(w, 0),
                                   {"value": "welcome to the bench"}),
        "server.settings.delete": one("DELETE", f"/v1/servers/{s0}/settings/unset", _s(w, 0)),
        "status.update": one("PUT", f"/v1/servers/{s1}/status", _s(w, 1),
                             heartbeat_body(f"{p} bench 1", ["Alpha", "Bravo", "Charlie"])),
        "status.list": one("GET", "/v1/status"),
        "status.get": one("GET", f"/v1/status/{s0}"),
        "presence.join": one("POST", f"/v1/servers/{s0}/players", _s(w, 0),
                             {"token": w.tokens[w.players[3]]}),
        "presence.leave": one("DELETE", f"/v1/servers/{s0}/players/{w.players[-1]}", _s(w, 0)),
        "board.create": one("PUT", f"/v1/boards/{p}.best", w.admin,
                            {"order": "desc", "operator": "best"}),
        "record.submit": one("POST", f"/v1/boards/{p}.incr/records", _s(w, 0),
                             {"player": p0, "score": 5, "meta": {"map": "ac_desert"}}),
        "record.top": one("GET", f"/v1/boards/{p}.best/records?limit=10"),
        "record.player": one("GET", f"/v1/boards/{p}.best/records/{w.players[10]}?around=5"),
        "record.of_player": one("GET", f"/v1/players/{p0}/records"),
        "season.list": one("GET", f"/v1/boards/{p}.incr/seasons"),
        "season.records": one("GET", f"/v1/boards/{p}.incr/seasons/0/records?limit=10"),
        "message.send": one("POST", "/v1/messages", _s(w, 1), {"to": s2, "body": "hello there"}),
        "message.read": lambda n: [Req("GET", f"/v1/messages?cursor={_tail(w, 3)}&wait=0",
                                       _s(w, 3))],
        "channel.join": one("PUT", f"/v1/servers/{s0}/channels/{p}chan", _s(w, 0)),
        "channel.leave": one("DELETE", f"/v1/servers/{s4}/channels/{p}none", _s(w, 4)),
        "mail.send": one("POST", "/v1/mail", _p(w, p2),
                         {"to": w.players[-2], "subject": "gg", "body": "good game, rematch?"}),
        "mail.list": one("GET", "/v1/mail", _p(w, p1)),
        "mail.read": one("GET", f"/v1/mail/{w.mail_ids[0]}", _p(w, p1)),
        "mail.delete": lambda n: _mail_delete(w, n),
        "mail.unread_count": one("GET", "/v1/mail/unread", _p(w, p1)),
        "ban.create": lambda n: [Req("POST", "/v1/bans", w.admin,
                                     {"ip": _net(w), "reason": "bench", "duration": 3600})
                                 for _ in range(n)],
        "ban.lift": lambda n: _ban_lift(w, n),
        "ban.list": one("GET", "/v1/bans?limit=20", _s(w, 0)),
        "ban.check": one("GET", f"/v1/bans/check?player={p0}&ip=203.0.113.9", _s(w, 0)),
        "record.void": lambda n: _record_void(w, n),
        "audit.list": one("GET", "/v1/audit?limit=20", w.admin),
        **{op: functools.partial(_clan_op, w, op=op)
           for op in ("clan.create", "clan.get", "clan.invite", "clan.accept", "clan.remove",
                      "clan.delete", "clan.transfer", "name.check")},
        "webhook.create": one("POST", "/v1/webhooks", w.admin,
                              {"url": HOOK_URL, "events": HOOK_EVENTS}),
        "webhook.delete": lambda n: [Req("DELETE", f"/v1/webhooks/{i}", w.admin)
                                     for i in _webhooks(w, n)],
        "webhook.deliveries": lambda n: [Req("GET", f"/v1/webhooks/{i}/deliveries", w.admin)
                                         for i in _webhooks(w, 1)],
    }


def generic(w: World, op: Operation) -> list[Req]:
    """A request derived from the declared fields, for operations the table does not know."""
    values = {"id": w.servers[0][0], "name": w.players[0], "board": f"{w.prefix}.best",
              "key": "volume", "channel": f"{w.prefix}chan", "player": w.players[0],
              "to": w.players[1]}
    path, query, body = op.path, [], {}
    for f in op.fields:
        if not f.required and f.where != "path":
            continue
        v = values.get(f.name) or {"int": 1, "bool": True, "json": {"a": 1}, "strlist": [],
                                   "enum": (f.choices or ("",))[0]}.get(f.kind, "bench")
        if f.where == "path":
            path = path.replace("{" + f.name + "}", str(v))
        elif f.where == "query":
            query.append(f"{f.name}={v}")
        else:
            body[f.name] = v
    if query:
        path += "?" + "&".join(query)
    if "anonymous" in op.auth:
        headers: dict[str, str] = {}
    elif "server" in op.auth:
        headers = _s(w, 0)
    elif "player" in op.auth:
        headers = _p(w, w.players[0])
    else:
        headers = w.admin
    return [Req(op.method, path, headers, body if body else None)]


def requests_for(w: World, op: Operation, n: int = 1) -> list[Req]:
    builder = table(w).get(op.name)
    return builder(n) if builder else generic(w, op)
