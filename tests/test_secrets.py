"""No password, key or token appears in a log line, or in any response but the one issuing it.

Log lines are checked as each LOG_FORMAT writes them (with the request lines on), besides each
record's message."""

from __future__ import annotations

import io
import json
import logging

import pytest

from shared import keys, logs
from tests.conftest import make_config
from tests.helpers import dump


@pytest.fixture
def config(redis_server):
    return make_config(redis_server.url, web_access_log=1)


@pytest.fixture(params=["text", "json"])
def written(request):
    """(format, what the root logger writes in that LOG_FORMAT during the test)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.formatter(request.param, "web"))
    handler.addFilter(logs._RequestId())
    logging.getLogger().addHandler(handler)
    yield request.param, out
    logging.getLogger().removeHandler(handler)


def test_secrets_stay_secret(api, client, caplog, written):
    caplog.set_level(logging.DEBUG)
    log_format, written = written
    bodies: list[str] = []

    def call(method, url, **kw):
        resp = client.open(url, method=method, **kw)
        bodies.append(resp.get_data(as_text=True))
        return resp

    password, new_password = "hunter2-very-secret", "correct-horse-battery"
    created = call("POST", "/v1/servers", json={"name": "s"}, headers=api.admin).json
    sid, key = created["id"], created["key"]
    srv = api.bearer(key)
    call("POST", "/v1/players", json={"name": "Sec", "password": password})
    token = call("POST", "/v1/sessions", json={"name": "sec", "password": password}).json["token"]
    player = api.bearer(token)
    call("POST", "/v1/sessions", json={"name": "sec", "password": "wrong-password-x"})
    api.heartbeat(sid, srv)
    call("POST", f"/v1/servers/{sid}/players", json={"token": token}, headers=srv)
    call("GET", "/v1/players/sec")
    call("GET", f"/v1/status/{sid}")
    call("GET", "/v1/status")
    call("PUT", "/v1/players/sec/password", json={"old": password, "new": new_password},
         headers=player)
    rotated = call("POST", f"/v1/servers/{sid}/key", headers=api.admin).json["key"]
    call("GET", "/openapi.json")

    lines = written.getvalue().splitlines()
    assert sum(" ssm.request" in ln or '"ssm.request"' in ln for ln in lines) >= 12
    if log_format == "json":
        assert all(isinstance(json.loads(ln), dict) for ln in lines)
    messages = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (password, new_password, token, key, rotated, api.token(player)):
        assert secret not in messages
        assert secret not in written.getvalue()
    for secret in (password, new_password, "wrong-password-x"):
        assert not any(secret in b for b in bodies), secret
    for issued in (token, key, rotated):
        assert sum(issued in b for b in bodies) == 1, issued
    stored = dump(client.application.extensions["ssm"]["redis"])
    assert "scrypt$" in stored  # the reader does see stored values
    for secret in (password, new_password, token, key, rotated):
        assert secret not in stored  # only hashes are kept


def test_issued_secrets_are_never_stored_for_a_replay(api, client):
    """server.create, server.rotate_key and session.login with an Idempotency-Key: the repeat
    answers the first result without the secret, and Redis never holds the secret."""
    r = client.application.extensions["ssm"]["redis"]
    admin = {**api.admin, "Idempotency-Key": "k1"}
    created = [client.post("/v1/servers", json={"name": "s"}, headers=admin) for _ in range(2)]
    sid = created[0].json["id"]
    rotated = [client.post(f"/v1/servers/{sid}/key", headers=admin) for _ in range(2)]
    client.post("/v1/players", json={"name": "Sec", "password": "hunter2-very"})
    body, anon = {"name": "sec", "password": "hunter2-very"}, {"Idempotency-Key": "k1"}
    logins = [client.post("/v1/sessions", json=body, headers=anon) for _ in range(2)]
    for (first, again), secret in ((created, "key"), (rotated, "key"), (logins, "token")):
        assert first.status_code == again.status_code < 300
        issued = first.json[secret]
        assert again.json == {k: v for k, v in first.json.items() if k != secret}
        assert issued not in again.get_data(as_text=True)
        assert issued not in dump(r)
    assert r.zcard(keys.player_sessions("sec")) == 1  # the repeat logged nobody in again


def test_idempotency_fingerprint_leaves_out_fields_declared_secret():
    from shared.dispatch import fingerprint
    from shared.registry import load

    ops = [op for op in load().values() if any(f.secret for f in op.fields)]
    assert {op.name for op in ops} >= {"player.register", "session.login", "player.password"}
    for op in ops:
        args = {f.name: "x" for f in op.fields}
        other = {**args, **{f.name: "y" for f in op.fields if f.secret and not f.fingerprinted}}
        assert fingerprint(op, args) == fingerprint(op, other), op.name
        for f in (f for f in op.fields if f.secret and f.fingerprinted):  # a random token
            assert fingerprint(op, args) != fingerprint(op, {**args, f.name: "y"}), op.name
        public = next(f.name for f in op.fields if not f.secret)
        assert fingerprint(op, args) != fingerprint(op, {**args, public: "y"}), op.name
