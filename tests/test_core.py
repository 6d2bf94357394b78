"""The HTTP frame: error format, auth header handling, body parsing, health, docs."""

from __future__ import annotations

import pytest


def test_unknown_route_is_json_404(client):
    resp = client.get("/v1/nope")
    assert resp.status_code == 404
    assert resp.json["error"]["code"] == "not_found"


def test_wrong_method_is_json_405(client):
    resp = client.patch("/v1/players")
    assert resp.status_code == 405
    assert resp.json["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("body,field", [
    (b"not json", "body"),
    (b"[1, 2]", "body"),
    (b'"str"', "body"),
    (b'{"name": 5, "password": "secret1"}', "name"),
    (b'{"name": "ab", "password": "secret1", "extra": 1}', "extra"),
    (b'{"password": "secret1"}', "name"),
    (b"\xff\xfe", "body"),
])
def test_bad_bodies_name_the_field(client, body, field):
    resp = client.post("/v1/players", data=body, content_type="application/json")
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == "invalid_input"
    assert resp.json["error"]["message"].startswith(field)


def test_multipart_body_is_a_clear_error(client):
    resp = client.post("/v1/players", data={"name": "bob", "password": "secret1"},
                       content_type="multipart/form-data")
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == "invalid_input"


def test_oversize_body_is_413(client):
    resp = client.post("/v1/players", data=b"x" * (65 * 1024), content_type="application/json")
    assert resp.status_code == 413
    assert resp.json["error"]["code"] == "too_large"


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer   ", "token"])
def test_malformed_authorization_is_401(client, header):
    resp = client.get("/v1/status", headers={"Authorization": header})
    assert resp.status_code == 401
    assert resp.json["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("token", ["p.bad.token", "s.abc.def", "garbage", "p.YWxpY2U.x"])
def test_unknown_token_is_401(client, token):
    resp = client.get("/v1/status", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401


def test_health_and_ready(client):
    assert client.get("/healthz").json == {"ok": True}
    assert client.get("/readyz").json == {"ok": True}


def test_readyz_503_when_redis_down(config):
    from shared.redis_conn import connect
    from wsgi import create_app

    dead = connect("redis://127.0.0.1:1/0", retry=None, socket_connect_timeout=0.2)
    resp = create_app(config, dead).test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.json["error"]["code"] == "unavailable"
    assert "Traceback" not in resp.get_data(as_text=True)


def test_openapi_lists_every_operation(client):
    from shared.registry import load

    doc = client.get("/openapi.json").json
    ids = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    assert ids == set(load())
    assert client.get("/docs").status_code == 200
    assert b"player.register" in client.get("/docs").data


def test_api_doc_matches_registry():
    from shared.web import apidoc

    assert apidoc.PATH.read_text() == apidoc.render(), "run: python -m shared.web.apidoc"


def test_idempotency_key_in_progress_expires_soon_then_answer_kept(api, config, r, monkeypatch):
    """While a request runs its key is held briefly (a process killed mid-request frees it
    within PENDING_TTL); once answered, the answer is kept for IDEMPOTENCY_TTL."""
    import dataclasses

    from shared import keys
    from shared.dispatch import PENDING_TTL
    from shared.registry import REGISTRY
    from wsgi import create_app

    op, seen = REGISTRY["server.create"], {}
    key = keys.idempotency("admin:admin", "server.create", "k-live")

    def spy(ctx, args):
        seen["held"], seen["ttl"] = r.get(key), r.ttl(key)
        return op.handler(ctx, args)

    monkeypatch.setitem(REGISTRY, "server.create", dataclasses.replace(op, handler=spy))
    resp = create_app(config, r).test_client().post(
        "/v1/servers", json={"name": "s"}, headers={**api.admin, "Idempotency-Key": "k-live"})
    assert resp.status_code == 201
    assert seen["held"].startswith("pending:") and 0 < seen["ttl"] <= PENDING_TTL
    assert r.ttl(key) > PENDING_TTL


@pytest.mark.parametrize("name", ["alice\n", "alice\r\n", "\nalice", "ali\nce"])
def test_patterns_match_the_whole_value(client, name):
    """Python's `$` also matches before a final newline; patterns must not let one through."""
    resp = client.post("/v1/players", json={"name": name, "password": "secret1"})
    assert resp.status_code == 400
    assert resp.json["error"]["message"].startswith("name")


@pytest.mark.parametrize(("url", "body"), [
    ("/v1/status?cursor=", {"servers": []}),
    ("/v1/boards/b1/records?limit=10&cursor=", {"records": [], "next_cursor": None}),
    ("/v1/players/nobody1/records?around=", {"records": []})])
def test_empty_query_value_means_not_given(client, api, url, body):
    assert client.put("/v1/boards/b1", json={"order": "desc", "operator": "best"},
                      headers=api.admin).status_code == 201
    api.player("nobody1")
    resp = client.get(url)  # never 400 for `cursor=`
    assert (resp.status_code, resp.json) == (200, body)


def test_deep_json_and_lone_surrogates_are_400(client, api):
    deep = b"[" * 5000 + b"]" * 5000
    assert client.post("/v1/players", data=deep, content_type="application/json"
                       ).status_code == 400
    nested = b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert client.post("/v1/players", data=nested, content_type="application/json"
                       ).status_code == 400
    resp = client.post("/v1/servers", data=b'{"name": "x\\ud800"}',
                       content_type="application/json", headers=api.admin)
    assert resp.status_code == 400 and resp.json["error"]["message"].startswith("name")


def test_session_dies_with_its_account_even_if_the_name_returns(api, client, r):
    """A session written for a deleted account must not open the next account of that name."""
    from shared import keys
    from shared.auth import sha256

    old = api.player("dave")
    token = api.token(old)
    stale = r.get(keys.player_session("dave", sha256(token)))
    assert client.delete("/v1/players/dave", headers=api.admin).status_code == 204
    api.player("dave")  # a new account with the same name
    r.set(keys.player_session("dave", sha256(token)), stale)  # a login racing the delete
    assert client.get("/v1/players/dave/settings", headers=old).status_code == 401
