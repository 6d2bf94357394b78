"""The HTTP calls of the released (server)² core (docs/RELAY.md), answered so that a server
running it starts cleanly: ``GET /test.html`` (its reachability check: 200, empty body) and
``GET /serversquaredmodification/latest.txt`` (the newest known build's version as plain text,
no line end; 404 when no build is registered: ``mod.build.set``). Public, no credential."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response

from shared.errors import NotFound
from shared.storage import modbuilds

LATEST = "/serversquaredmodification/latest.txt"


def add_routes(app: Flask, r: Any) -> None:
    @app.get("/test.html")
    def legacy_test() -> Response:
        return Response(b"", mimetype="text/html")

    @app.get(LATEST)
    def legacy_latest() -> Response:
        version = modbuilds.latest(r)
        if version is None:
            raise NotFound("no build of the (server)² core is registered (mod.build.set)")
        resp = Response(version, mimetype="text/plain")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp
