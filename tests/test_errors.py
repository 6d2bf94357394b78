"""One error table: every code the API answers is an ApiError class carrying its status, and
both transports turn a Redis error into the same Unavailable answer."""

from __future__ import annotations

import json

import redis

from relay.session import Session
from shared import errors
from shared.redis_conn import connect
from shared.registry import load
from shared.web import apidoc


def test_every_documented_error_code_is_a_class_with_that_status():
    documented = {(e.code, e.status) for op in load().values() for e in apidoc.errors(op)}
    assert documented, "no operation documents its errors"
    missing = {(code, status) for code, status in documented
               if errors.CODES.get(code) != status}
    assert not missing, f"add an ApiError subclass for: {sorted(missing)}"


def test_conflict_codes_are_classes():
    conflicts = {c for c, status in errors.CODES.items() if status == 409}
    assert {"name_taken", "mailbox_full", "too_many_unread", "board_exists", "server_not_live",
            "request_in_progress", "too_many_settings", "too_many_channels"} < conflicts
    assert errors.CODES["idempotency_key_reused"] == 422
    assert errors.CODES["invalid_input"] == 400  # 415 answers invalid_input too; 400 is its own


def test_http_codes_come_from_the_classes():
    import wsgi

    assert wsgi.HTTP_CODES is errors.BY_STATUS
    assert wsgi.HTTP_CODES[405] == errors.MethodNotAllowed.code
    assert wsgi.HTTP_CODES[503] == errors.Unavailable.code


def test_redis_error_is_the_same_unavailable_on_both_transports(config):
    from wsgi import create_app

    expected = errors.Unavailable()
    dead = connect("redis://127.0.0.1:1/0", retry=None, socket_connect_timeout=0.2)
    resp = create_app(config, dead).test_client().get("/readyz")
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "1"
    assert resp.json == {"error": {"code": "unavailable", "message": expected.message}}

    session = Session(hub=None, ip="127.0.0.1")
    session.mode = "JSON"
    line = json.loads(session.failed(redis.ConnectionError("down")).out)
    assert line == {"state": "ERROR", "msg": expected.message, "code": "unavailable",
                    "retry_after": 1}
