"""The HTTP adapter: a Flask app whose routes are generated from the operation registry.

``gunicorn wsgi:app`` (see ``web/gunicorn_conf.py``). Everything about HTTP lives here:
reading the bearer token, gathering path/query/body arguments, status codes, JSON errors.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from shared import auth, logs, metrics
from shared.config import Config
from shared.dispatch import Ctx, run
from shared.errors import (
    BY_STATUS,
    ApiError,
    Internal,
    InvalidInput,
    RequestTimeout,
    TooLarge,
    Unauthenticated,
    Unavailable,
)
from shared.redis_conn import REDIS_ERRORS, connect_data, preload, queue_for
from shared.registry import Operation, load
from shared.schema import validate
from shared.storage import sessions
from shared.web import accounts, legacy, openapi, pages, site
from web import cli

log = logging.getLogger("ssm.web")

# status -> code for errors Werkzeug raises before a route runs (derived from shared.errors)
HTTP_CODES = BY_STATUS


def create_app(config: Config | None = None, redis_client: Any = None,
               clock: Callable[[], float] = time.time, queue_client: Any = None) -> Flask:
    """Build the app: one route per registered operation, plus health, docs and status page.

    ``redis_client`` is the data client, ``queue_client`` the one jobs are queued with
    (default: from the config, ``shared.redis_conn``)."""
    config = config or Config.from_env()
    # each long-poll holds a pooled connection for up to 30 s (redis-py's default pool: 100)
    r = redis_client if redis_client is not None else connect_data(
        config, max_connections=config.web_redis_connections)
    q = queue_client if queue_client is not None else queue_for(config, r)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.request_body_max
    app.json = json_provider = DefaultJSONProvider(app)  # Flask's own, with the keys in order
    json_provider.sort_keys = False
    app.extensions["ssm"] = {"config": config, "redis": r, "clock": clock, "queue": q}
    if config.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.trusted_proxies)  # type: ignore
    metrics.instrument(app, config)  # request ids, request lines, /metrics (docs/OPERATIONS.md)
    registry = load()
    preload(r)
    add_operations(app, registry, config, r, clock, q)
    add_pages(app, registry, config, r, clock)
    legacy.add_routes(app, r)  # the released (server)² core's own calls (shared/web/legacy.py)
    app.register_blueprint(accounts.bp)  # sign-up, log-in, /me, /boards (README "Web pages")
    add_error_handlers(app, config)
    add_http_caching(app)
    cli.register(app)  # the admin CLI: flask --app wsgi server create NAME, ... (web/cli.py)
    return app


def add_operations(app: Flask, registry: dict[str, Operation], config: Config, r: Any,
                   clock: Callable[[], float], q: Any) -> None:
    """One route per registered operation."""
    for op in registry.values():
        rule = re.sub(r"\{(\w+)\}", r"<\1>", op.path)
        app.add_url_rule(rule, endpoint=op.name, view_func=_view(op, config, r, clock, q),
                         methods=[op.method])


def add_pages(app: Flask, registry: dict[str, Operation], config: Config, r: Any,
              clock: Callable[[], float]) -> None:
    """Health checks, the API docs, the OpenAPI document, and the players' web (the server
    browser, leaderboards, profiles: the Blueprint of ``shared/web/site.py``)."""

    @app.get("/healthz")
    def healthz() -> Any:
        return {"ok": True}

    @app.get("/readyz")
    def readyz() -> Any:
        r.ping()
        return {"ok": True}

    @app.get("/openapi.json")
    def openapi_json() -> Any:
        return openapi.document(registry, config)

    @app.get("/docs")
    def docs() -> Any:  # the other pages' protections (site.html), its inline style hashed
        page = pages.docs_page(registry, config)
        resp = Response(page, mimetype="text/html")
        resp.headers["Content-Security-Policy"] = pages.docs_csp(page)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Frame-Options"] = "DENY"
        return resp

    app.static_folder = str(pages.STATIC)  # Flask's own /static/<file>: the stylesheet, the script
    app.register_blueprint(site.blueprint(registry, config, r, clock))


SESSION_COOKIE = "ssm_session"  # the players' web session (README "Web pages")
UNCACHED = frozenset({"healthz", "readyz", "metrics"})  # probes read now, never a copy


def add_http_caching(app: Flask) -> None:
    """Compression and Cache-Control for every answer (README "Abuse budgets").

    Pages and JSON answers above COMPRESS_MIN_SIZE are compressed by Flask-Compress (zstd,
    brotli, gzip, as the client accepts); the browser's list is compressed once per rendering
    (its ETag keys the cache). An answer to a request with neither a bearer nor the session
    cookie, a GET of public data (200 or 304), is ``public, max-age=5`` with
    ``Vary: Cookie, Authorization``, so a reverse proxy can absorb a crowd; everything else
    (an answer to a player, a server or the admin, any write, an error, an answer that sets a
    cookie or that its view marked ``no-store``) is ``private, no-store``."""
    from flask_compress import Compress

    from shared.web.pages import CompressedCache

    # conditional requests are answered before compression (the browser's views, send_file)
    # gzip at 9: the browser's page is compressed once per rendering (17 KiB, 19 KiB at 6)
    app.config.update(COMPRESS_MIN_SIZE=500, COMPRESS_LEVEL=9,
                      COMPRESS_CACHE_BACKEND=CompressedCache,
                      COMPRESS_CACHE_KEY=lambda req: g.get("ssm_compress_key", ""),
                      COMPRESS_EVALUATE_CONDITIONAL_REQUEST=False)
    Compress(app)

    @app.after_request
    def cache_control(resp: Response) -> Response:
        public = (request.method in ("GET", "HEAD") and resp.status_code in (200, 304)
                  and "Authorization" not in request.headers
                  and SESSION_COOKIE not in request.cookies
                  and "Set-Cookie" not in resp.headers and not resp.cache_control.no_store
                  and request.endpoint not in UNCACHED)
        resp.headers["Cache-Control"] = "public, max-age=5" if public else "private, no-store"
        vary = [v.strip() for v in resp.headers.get("Vary", "").split(",") if v.strip()]
        for name in ("Cookie", "Authorization"):
            if name.lower() not in (v.lower() for v in vary):
                vary.append(name)
        resp.headers["Vary"] = ", ".join(vary)
        return resp


def add_error_handlers(app: Flask, config: Config) -> None:
    """Every error becomes ``{"error": {"code", "message"}}``: domain errors as they are,
    Werkzeug's by their status, any Redis error as Unavailable, anything else as Internal."""

    @app.errorhandler(ApiError)
    def api_error(err: ApiError) -> Any:
        return _error(err.status, err.code, err.message, err.retry_after)

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Any:
        status = err.code or 500
        message = err.description or err.name
        if status == 413:
            message = f"request body larger than {config.request_body_max} bytes"
        return _error(status, HTTP_CODES.get(status, "error"), message)

    def redis_down(err: Exception) -> Any:
        log.warning("redis unavailable: %s", type(err).__name__)
        if config.web_metrics:
            metrics.web().redis_errors.labels(type(err).__name__).inc()
        return api_error(Unavailable())

    for exc in REDIS_ERRORS:  # cluster errors included: CLUSTERDOWN, TRYAGAIN, no node, ...
        app.register_error_handler(exc, redis_down)

    @app.errorhandler(Exception)
    def crash(err: Exception) -> Any:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return api_error(Internal())


def _error(status: int, code: str, message: str, retry_after: int | None = None) -> Response:
    resp = Response(json.dumps({"error": {"code": code, "message": message}}), status=status,
                    mimetype="application/json")
    if retry_after:
        resp.headers["Retry-After"] = str(retry_after)
    return resp


def _bearer() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization must be 'Bearer <token>'")
    return token.strip()


def _body(limit: int) -> dict[str, Any]:
    # Werkzeug's stream stops quietly at MAX_CONTENT_LENGTH when there is no Content-Length
    # (a chunked body), so the cut body would parse: read the server's input directly, one byte
    # past the limit, to tell. The worker drops what the client still sends (web/webworker).
    if (request.content_length or 0) > limit:
        raise TooLarge(f"request body larger than {limit} bytes")
    try:
        data = request.environ["wsgi.input"].read(limit + 1)
    except TimeoutError:  # the worker's per-read wait or whole-body deadline (web/webworker)
        raise RequestTimeout("request body: the client stopped sending it, or sent it too "
                             "slowly") from None
    if len(data) > limit:
        raise TooLarge(f"request body larger than {limit} bytes")
    if not data.strip():
        return {}
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidInput("body", "is not valid JSON (or nested too deeply)") from None
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object")
    return body


def _prefetch(op: Operation, raw: dict[str, Any], config: Config) -> Any:
    """The operation's reads, bound to its arguments, to send with the credential check; None
    when it declares none or the arguments are invalid (then dispatch reports the error)."""
    if op.prefetch is None:
        return None
    try:
        args = validate(op.fields, raw, config)
    except ApiError:
        return None
    reads = op.prefetch
    return lambda pipe, who: reads(pipe, args, who)


def _view(op: Operation, config: Config, r: Any, clock: Callable[[], float],
          q: Any) -> Callable:
    query_fields = [f.name for f in op.fields if f.where == "query"]
    has_body = any(f.where == "body" for f in op.fields)

    def view(**path: str) -> Any:
        # an empty value (`?cursor=`, as the SPEC writes its routes) means "not given"
        raw: dict[str, Any] = {n: request.args[n] for n in query_fields if request.args.get(n)}
        raw.update(path)
        caller, fetched = auth.resolve_with(r, config, _bearer(), op.account,
                                            _prefetch(op, raw, config))
        g.ssm_caller = caller.kind
        ctx = Ctx(r, config, caller, ip=request.remote_addr or "", clock=clock,
                  prefetched=fetched, queue=q)
        if has_body:
            raw = {**_body(config.request_body_max), **raw}
        outcome = run(op, ctx, raw, idempotency_key=request.headers.get("Idempotency-Key"))
        if caller.kind == "player":  # session.list's "last used": a write once a minute at most
            sessions.touch(r, caller.lname, caller.session, caller.used, clock())
        if outcome.body is None:
            return Response(status=204)
        return Response(json.dumps(outcome.body), status=outcome.status,
                        mimetype="application/json")

    view.__name__ = op.name.replace(".", "_")
    return view


def __getattr__(name: str) -> Any:
    """``wsgi.app`` is built on first access, so importing this module needs no Redis."""
    if name == "app":
        config = Config.from_env()
        logs.setup_logging(config, "web")
        admin, redis_client = cli.loaded_by_flask_command(), None
        if admin and not config.redis_url:  # the admin CLI next to `shared.up`
            config, redis_client = cli.find_redis(config)
        app = create_app(config, redis_client)
        from shared import migrations  # data newer than this release: exit, and gunicorn halts

        if not admin and not migrations.at_start(
                app.extensions["ssm"]["redis"], "ssm web", run_steps=False):
            sys.exit(3)  # gunicorn's "worker failed to boot": the master stops, no restart loop
        globals()["app"] = app
        return app
    raise AttributeError(name)
