"""The HTML pages: the players' web (the server browser at ``/``, leaderboards at
``/boards/{board}``, profiles at ``/players/{name}``) and the API reference at ``/docs``.

Pages read through the registry's operations (``shared.dispatch.run``), as the API does; this
module only shapes what they return for the templates in ``templates/`` (autoescaped: every
user-supplied string is escaped there). The one stylesheet and the one script (the browser's
live refresh, progressive enhancement only) are in ``static/``.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from shared import SOURCE_URL
from shared.config import Config
from shared.registry import Operation
from shared.schema import PLAYER_NAME
from shared.storage import records
from shared.storage.status import public_if_changed
from shared.web import apidoc

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"

# auto_reload off: templates are read once per process, not stat()ed on every render (and
# on every include); a changed template shows after a restart.
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), auto_reload=False,
    autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)

# Pages serve no inline script or style: only this origin's files.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")

# The header's account part and the forms' CSRF token come from shared/web/accounts.py (it
# holds the request); until it is loaded, every page is anonymous.
_TEMPLATES.globals.update(account=lambda: None, csrf_token=lambda: "")
_TEMPLATES.globals["source_url"] = SOURCE_URL  # the footer's link to the source (AGPL)
# a name in a heartbeat that could be a registered player's links to their profile
_TEMPLATES.tests["player_name"] = lambda s: re.fullmatch(PLAYER_NAME, s) is not None


def use_accounts(account: Any, csrf_token: Any) -> None:
    """Templates get ``account()`` (``{name, unread}`` or None) and ``csrf_token()``."""
    _TEMPLATES.globals.update(account=account, csrf_token=csrf_token)


_INLINE_STYLE = re.compile(r"<style>(.*?)</style>", re.S)


def docs_csp(page: str) -> str:
    """The CSP of the /docs page: the pages' own, whose ``style-src`` also admits the page's
    inline stylesheet by its hash (a self-contained page; nothing else inline runs)."""
    hashes = " ".join("'sha256-" + base64.b64encode(hashlib.sha256(m.encode()).digest()).decode()
                      + "'" for m in _INLINE_STYLE.findall(page))
    return CSP.replace("style-src 'self'", f"style-src 'self' {hashes}" if hashes
                       else "style-src 'self'")


BOARD_PAGE = 25  # records per leaderboard page
SORTS = {"players": "most players", "name": "name"}


# -- the server browser ------------------------------------------------------------------

def browser_filters(query: Mapping[str, str]) -> dict[str, Any]:
    """The browser's filters from the query string; anything unknown reads as "no filter"."""
    sort = query.get("sort", "players")
    return {"mode": query.get("mode", ""), "map": query.get("map", ""),
            "hide_empty": query.get("hide_empty") == "1",
            "hide_full": query.get("hide_full") == "1",
            "sort": sort if sort in SORTS else "players"}


def pick_servers(servers: list[dict[str, Any]], f: dict[str, Any]) -> list[dict[str, Any]]:
    """The servers the filters keep, sorted as asked (busiest first, then by name)."""
    kept = [s for s in servers
            if (not f["mode"] or s["mode"] == f["mode"]) and (not f["map"] or s["map"] == f["map"])
            and not (f["hide_empty"] and s["player_count"] == 0)
            and not (f["hide_full"] and s["player_count"] >= s["max_players"])]
    if f["sort"] == "name":
        return sorted(kept, key=lambda s: (s["name"].lower(), -s["player_count"]))
    return sorted(kept, key=lambda s: (-s["player_count"], s["name"].lower()))


def connect_link(host: str, port: int) -> str:
    """``assaultcube://host:port`` (an IPv6 address in brackets)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"assaultcube://{host}:{port}"


def age(seconds: float) -> str:
    """A short, readable age: ``4 s``, ``3 min``, ``2 h``, ``5 d``."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 172800:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


def _rows(servers: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    return [{**s, "link": connect_link(s["host"], s["port"]), "age": age(now - s["updated"]),
             "full": s["player_count"] >= s["max_players"]} for s in servers]


def browser_context(servers: list[dict[str, Any]], query: Mapping[str, str],
                    now: float) -> dict[str, Any]:
    f = browser_filters(query)
    shown = pick_servers(servers, f)
    return {"f": f, "sorts": SORTS, "servers": _rows(shown, now), "now": now,
            "modes": sorted({s["mode"] for s in servers if s["mode"]}, key=str.lower),
            "maps": sorted({s["map"] for s in servers if s["map"]}, key=str.lower),
            "total": len(servers), "players": sum(s["player_count"] for s in servers)}


def browser_page(servers: list[dict[str, Any]], query: Mapping[str, str], now: float) -> str:
    """``/``: every live public server, filtered by the query string (a GET form)."""
    ctx = browser_context(servers, query, now)
    return _render("browser.html", title="Servers", listing=Markup(
        _render("_servers.html", **ctx)), etag="", **ctx)


def browser_fragment(servers: list[dict[str, Any]], query: Mapping[str, str],
                     now: float) -> str:
    """The browser's list alone, for the page's script to swap in (the live refresh)."""
    return _render("_servers.html", **browser_context(servers, query, now))


# -- the server browser's render cache ---------------------------------------------------
#
# The list changes only when a heartbeat changes what it shows, a server comes or goes, or a
# heartbeat lapses. The list's version (``keys.status_version``, bumped in the scripts that
# change the list) is read on every request, in the same round trip that would read the list;
# while it is the one this worker holds, the list rendered for those filters is reused. Ages
# are rendered from timestamps (``data-ts``, the page's script keeps them current), so a
# rendering is reused until the first shown heartbeat could lapse, and at most AGE_REFRESH
# seconds (then the times shown are read again). Only the list is cached: the page around it
# (its header may name the logged-in player) is rendered for each request.

AGE_REFRESH = 10.0  # seconds a rendered list keeps the heartbeat times it shows
FILTERS_CACHED = 64  # renderings kept per version (filters are user-chosen: bounded)
_MARK = "\x00ssm-list\x00"


@dataclass
class Rendered:
    """One rendering of the list for one filter: the fragment, its ETag (naming what it shows
    but the ages, which follow from the timestamps it carries), the key of its compressed
    bytes (this rendering), the form's options."""

    html: str
    body: bytes
    etag: str
    key: str
    modes: list[str]
    maps: list[str]


@dataclass
class Snapshot:
    """The public list at one version, read at ``read_at``; good until ``expires``."""

    version: str
    servers: list[dict[str, Any]]
    read_at: float
    expires: float
    rendered: dict[tuple, Rendered] = field(default_factory=dict)


class BrowserCache:
    """The server browser's list, read and rendered once per version and filter, in this
    process (each web worker holds its own)."""

    def __init__(self, r: Any, status_ttl: int, clock: Callable[[], float]):
        self.r, self.ttl, self.clock = r, status_ttl, clock
        self.snap: Snapshot | None = None
        self._lock: Any = None

    @property
    def lock(self) -> Any:
        """One reader and renderer at a time, so a crowd arriving at a change reads and renders
        it once. Made at first use, in the worker (after gevent patched ``threading``)."""
        if self._lock is None:
            self._lock = threading.Lock()
        return self._lock

    def snapshot(self) -> Snapshot:
        """The current list. One round trip while the held one is current (the version alone);
        else, one request at a time, a second that reads the list with its version."""
        started = self.clock()
        snap = self.snap
        if snap is not None and started < snap.expires:
            version, _ = public_if_changed(self.r, 0, snap.version, version_only=True)
            if version == snap.version:
                return snap
        with self.lock:
            snap, now = self.snap, self.clock()
            if snap is not None and snap.read_at >= started and now < snap.expires:
                return snap  # read after this request began: it holds what came before
            version, servers = public_if_changed(self.r, int(now * 1000) - self.ttl * 1000,
                                                 None)
            servers = sorted(servers or [],
                             key=lambda s: (-s["player_count"], s["name"].lower()))
            first_lapse = min((s["updated"] for s in servers), default=now) + self.ttl
            snap = Snapshot(version, servers, now, min(now + AGE_REFRESH, first_lapse))
            self.snap = snap
            return snap

    def listing(self, query: Mapping[str, str]) -> Rendered:
        """The list for these filters, rendered at most once per snapshot."""
        snap = self.snapshot()
        f = browser_filters(query)
        key = tuple(f.values())
        got = snap.rendered.get(key)
        if got is not None:
            return got
        with self.lock:
            got = snap.rendered.get(key)
            if got is None:
                got = self._render(snap, query)
                if len(snap.rendered) < FILTERS_CACHED:
                    snap.rendered[key] = got
            return got

    @staticmethod
    def _render(snap: Snapshot, query: Mapping[str, str]) -> Rendered:
        ctx = browser_context(snap.servers, query, snap.read_at)
        html = _render("_servers.html", **ctx)
        shown = [{k: v for k, v in s.items() if k != "age"} for s in ctx["servers"]]
        what = json.dumps([shown, ctx["f"], ctx["modes"], ctx["maps"], ctx["total"],
                           ctx["players"]], sort_keys=True)
        etag = hashlib.sha256(what.encode()).hexdigest()[:24]
        return Rendered(html, html.encode(), etag, f"{etag}@{snap.read_at}", ctx["modes"],
                        ctx["maps"])

    def page(self, query: Mapping[str, str]) -> tuple[list[bytes], str, str]:
        """``/``: (the page in three parts, its ETag, the key of its compressed bytes); the
        page around the cached list rendered now (the list is not copied into it)."""
        got = self.listing(query)
        shell = _render("browser.html", title="Servers", f=browser_filters(query), sorts=SORTS,
                        modes=got.modes, maps=got.maps, listing=Markup(_MARK),
                        etag=f'W/"{got.etag}"')
        head, _, tail = shell.partition(_MARK)
        around = hashlib.sha256(f"{head}\x00{tail}".encode()).hexdigest()[:16]
        return ([head.encode(), got.body, tail.encode()], f"{got.etag}.{around}",
                f"{got.key}.{around}")


class CompressedCache:
    """Flask-Compress's cache of compressed answers (``COMPRESS_CACHE_BACKEND``), bounded:
    only answers whose key names their bytes (a rendering of the browser's list) are kept."""

    MAX = 256

    def __init__(self) -> None:
        self.data: OrderedDict[str, bytes] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        return None if key.endswith(";") else self.data.get(key)

    def set(self, key: str, value: bytes) -> None:
        if key.endswith(";"):
            return
        self.data[key] = value
        self.data.move_to_end(key)
        while len(self.data) > self.MAX:
            self.data.popitem(last=False)


# -- leaderboards ------------------------------------------------------------------------

def board_page(board: dict[str, Any], page: dict[str, Any], cursor: int,
               seasons: list[dict[str, Any]], season: int | None = None) -> str:
    """``/boards/{board}``: one page of the ranking of one season (``season.records``), with
    links to the previous and next pages. ``seasons`` are the tabs (``season_tabs``): empty for
    a board without ``reset``. ``season`` is the past season shown, None for the current one."""
    prev = None if cursor == 0 else max(0, cursor - BOARD_PAGE)
    shown = next((s for s in seasons if s["current"]), None)
    return _render("board.html", title=board["board"], board=board,
                   table=_board_table(page),
                   next_cursor=page["next_cursor"], prev_cursor=prev, seasons=seasons,
                   shown=shown, season_query=f"season={season}&" if season is not None else "",
                   when=when, meta_text=meta_text)


def _board_table(page: dict[str, Any]) -> Markup:
    """A page of records as the board's table: rendered once for the same records (the key is
    the records themselves, as stored when the page has ``stored``: never stale), the page
    around it for each request."""
    key: Any = page.get("stored") or json.dumps(page["records"], sort_keys=True)
    got = _TABLES.get(key)
    if got is None:
        if "stored" in page:
            first, raws = page["stored"]
            recs = [records.render(raw, first + i + 1) for i, raw in enumerate(raws)
                    if raw != "null"]
        else:
            recs = page["records"]
        rows = [{**rec, "href": quote(rec["player"], safe=""), "meta_text": meta_text(rec["meta"]),
                 "when": when(rec["at"])} for rec in recs]  # item lookups: see BENCHMARKS
        got = _TABLES[key] = Markup(_render("_board_rows.html", records=rows))
        while len(_TABLES) > TABLES_CACHED:
            _TABLES.pop(next(iter(_TABLES)))
    return got


TABLES_CACHED = 256  # board tables kept (the oldest made goes first)
_TABLES: dict[Any, Markup] = {}


def season_tabs(listing: dict[str, Any], shown: int) -> list[dict[str, Any]]:
    """The season tabs of a board, from ``season.list``: ``[{label, season, href, current,
    dates, running}]``, the running season first; ``current`` marks the one ``shown``. None for a
    board without ``reset``."""
    if not listing.get("reset"):
        return []
    base = f"/boards/{quote(listing['board'], safe='')}"
    out = []
    for s in listing["seasons"]:
        running = s["season"] == listing["current"]
        out.append({"label": "Now" if running else f"Season {s['season']}", "season": s["season"],
                    "href": base if running else f"{base}?season={s['season']}",
                    "current": s["season"] == shown, "running": running,
                    "dates": _days(s["start"], s["end"])})
    return out


def _days(start: int, end: int) -> str:
    """A season's days: ``30 Nov 2026``, or ``23 Nov 2026 to 29 Nov 2026``."""
    first, last = (datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%d %b %Y")
                   for t in (start, end - 1))
    return first if first == last else f"{first} to {last}"


def meta_text(meta: Any) -> str:
    """A record's meta as ``flags 7 · frags 31``."""
    if isinstance(meta, dict):
        return " · ".join(f"{k} {v}" for k, v in meta.items())
    return "" if meta is None else str(meta)


def when(ts: float | None) -> str:
    if ts is None:
        return "never"
    return _minute(int(ts // 60))


@functools.lru_cache(maxsize=4096)
def _minute(minute: int) -> str:
    """A minute's text (many records share one: formatted once)."""
    return datetime.datetime.fromtimestamp(minute * 60, datetime.UTC).strftime(
        "%Y-%m-%d %H:%M UTC")


# -- profiles ----------------------------------------------------------------------------

PRESENCE = ("name", "map", "mode", "player_count", "max_players")  # a server, on a profile


def _presence(where: dict[str, Any] | None) -> dict[str, Any] | None:
    """The live server as _presence.html shows it (the profile and /me): the fields it shows
    and the connect link, not the heartbeat's time."""
    if where is None:
        return None
    return {**{k: where[k] for k in PRESENCE}, "link": connect_link(where["host"], where["port"])}


def player_page(player: dict[str, Any], where: dict[str, Any] | None,
                records: list[dict[str, Any]], clan: dict[str, Any] | None) -> str:
    """``/players/{name}``: online where (``where`` is the live server's status, None when
    offline or on a server that is not public), records and clan. For a visitor who is not
    logged in, the page is all what it shows: :func:`_anonymous_profile` keeps it."""
    server = _presence(where)
    account: Callable[[], Any] = _TEMPLATES.globals["account"]  # type: ignore[assignment]
    if account() is not None:  # the header names the viewer
        return _render("player.html", title=player["name"], player=player, server=server,
                       records=records, clan=clan, when=when, meta_text=meta_text)
    return _anonymous_profile(json.dumps([player, server, records, clan], separators=(",", ":")))


@functools.lru_cache(maxsize=1024)
def _anonymous_profile(shown: str) -> str:
    """A profile as a visitor who is not logged in sees it, by the JSON of everything it shows
    (read afresh on every request): a page read again unchanged, a link shared in a channel,
    costs no Jinja (0.08 ms of the page's 0.6 ms of CPU), and a change in anything shown is a
    new key, so it is never stale. Such a page holds nothing personal (no CSRF token: the
    header's log-out form is for a logged-in viewer). At most 1,024 pages (~3 MiB) a process."""
    player, server, records, clan = json.loads(shown)
    return _render("player.html", title=player["name"], player=player, server=server,
                   records=records, clan=clan, when=when, meta_text=meta_text)


def error_page(status: int, message: str) -> str:
    return _render("error.html", title=f"{status}", status=status, message=message)


def me_page(player: dict[str, Any], where: dict[str, Any] | None,
            records: list[dict[str, Any]], clan: dict[str, Any] | None, unread: int) -> str:
    """``/me``: the player's own account (as the profile shows it) and their unread count."""
    return _render("me.html", title=player["name"], player=player, server=_presence(where),
                   records=records, clan=clan, unread=unread, when=when, meta_text=meta_text)


def render(template: str, **context: Any) -> str:
    """Any template by name (the account pages' forms)."""
    return _TEMPLATES.get_template(template).render(**context)


_render = render


# -- the API reference -------------------------------------------------------------------

def docs_page(registry: dict[str, Operation], config: Config) -> str:
    """The API reference for client writers: areas in reading order, then per operation its
    route, who may call, relay command, fields with their limits, errors and an example."""
    return _TEMPLATES.get_template("docs.html").render(
        title="API", areas=apidoc.grouped(registry), who=apidoc.who, example=apidoc.example,
        errors=apidoc.errors, description=apidoc.description,
        field_docs=lambda op: apidoc.field_docs(op, config),
        html=lambda text: apidoc.to_html(text, config),
        text=lambda text: apidoc.inline_html(text, config),
        relay_port=config.relay_port, session_days=config.session_ttl // 86400,
        idempotency_hours=config.idempotency_ttl // 3600)

