"""The players' web as a Blueprint: the server browser (``/`` and the fragment its script
refreshes), a leaderboard's page (``/boards/<board>``) and a profile (``/players/<name>``).
Rendering is ``shared/web/pages.py``; the pipelined reads are ``shared/web/reads.py`` and
``shared.storage.records.season_listing``. The web accounts (``/signup``, ``/me``, ``/boards``)
are their own Blueprint (``shared/web/accounts.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, g, request
from redis.exceptions import NoScriptError

from shared.config import Config
from shared.errors import ApiError
from shared.redis_conn import forget_scripts
from shared.registry import Operation
from shared.schema import validate
from shared.storage import records
from shared.web import pages, reads


def html(body: str | list[bytes], status: int = 200) -> Response:
    """An HTML answer with the pages' protections (CSP, nosniff)."""
    resp = Response(body, status=status, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = pages.CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def cached(resp: Response, etag: str, key: str) -> Response:
    """A weak ETag (304 on If-None-Match) naming what the list shows; ``key`` names these
    bytes, for the cache of compressed answers (wsgi.add_http_caching)."""
    resp.set_etag(etag, weak=True)
    g.ssm_compress_key = key
    resp.make_conditional(request)
    return resp


def blueprint(registry: dict[str, Operation], config: Config, r: Any,
              clock: Callable[[], float]) -> Blueprint:
    """The players' pages, reading ``r`` with ``clock``'s time."""
    bp = Blueprint("pages", __name__)

    def page(view: Callable[..., str]) -> Callable[..., Response]:
        """An HTML view: an operation's error becomes an HTML page with its status."""
        def wrapped(**path: str) -> Response:
            try:
                return html(view(**path))
            except ApiError as err:
                return html(pages.error_page(err.status, err.message), err.status)
            except NoScriptError:
                forget_scripts(r)  # a node restarted without the scripts: send sources again
                raise
        wrapped.__name__ = view.__name__
        return wrapped

    # the server browser: the list rendered once per version and filter (shared/web/pages.py)
    servers = pages.BrowserCache(r, config.status_ttl, clock)

    @bp.get("/")
    def browser() -> Response:
        body, etag, key = servers.page(request.args)
        return cached(html(body), etag, key)

    @bp.get("/fragments/servers")
    def browser_servers() -> Response:
        got = servers.listing(request.args)
        return cached(Response(got.body, mimetype="text/html"), got.etag, got.key)

    @bp.get("/boards/<board>")
    @page
    def board_page(board: str) -> str:
        cursor = request.args.get("cursor", "")
        cursor = cursor if cursor.isdigit() and len(cursor) <= 9 else "0"
        season = request.args.get("season", "")
        asked = int(season) if season.isdigit() and len(season) <= 9 else None
        board = validate(registry["season.list"].fields, {"board": board}, config)["board"]
        # season.list and the page shown (record.top or season.records) in two round trips
        listing, top = records.season_listing(r, board, clock(), config.seasons_kept,
                                              (asked, int(cursor), pages.BOARD_PAGE), True)
        assert top is not None  # a page was asked for
        shown = listing["current"] if asked is None else asked
        return pages.board_page(listing, top, int(cursor), pages.season_tabs(listing, shown),
                                shown if shown != listing["current"] else None)

    @bp.get("/players/<name>")
    @page
    def player_page(name: str) -> str:
        name = validate(registry["player.get"].fields, {"name": name}, config)["name"]
        # player.get, status.get, record.of_player, clan.get: two round trips (three in a clan)
        player, where, records_held, clan = reads.profile(r, name, clock(), config.status_ttl)
        return pages.player_page(player, where, records_held, clan)

    return bp
