"""The relay/HTTP contract: every operation in the registry answers the same over HTTP and the
relay (the same data, the same error codes), for every kind of caller (docs/RELAY.md
"Commands": a relay command is the operation of that name, docs/API.md).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from relay.server import Relay
from shared.registry import load
from shared.web import apidoc
from tests.conftest import ADMIN_TOKEN
from tests.relay_client import authed, greeted, server_creds
from tests.world import real_example, real_value, world

# --- operations: same data and codes as HTTP ------------------------------------------------
BEAT = {"name": "Srv", "host": "ac.example.org", "port": 28763, "map": "ac_desert",
        "mode": "ctf", "players": ["a", "b"], "max_players": 16, "version": "1.3",
        "public": True}


def test_operation_over_relay_matches_http(relay, api, client):
    server_id, key, headers = server_creds(api)
    c = authed(relay.port, server_id, key)
    words = f"{server_id} Srv ac.example.org 28763 ac_desert ctf a,b 16 1.3 true"
    by_words = c.cmd("HEARTBEAT", words)
    assert by_words["state"] == "OK", by_words
    by_json = c.cmd("status.update", {"id": server_id, **BEAT})
    assert {k: v for k, v in by_words["data"].items() if k not in ("updated", "expires_at")} \
        == {k: v for k, v in by_json["data"].items() if k not in ("updated", "expires_at")}
    over_http = client.get(f"/v1/status/{server_id}").json
    assert c.cmd("status.get", server_id)["data"] == over_http
    assert c.cmd("STATUS", server_id)["data"] == over_http


@pytest.mark.parametrize("cmd,args,method,path,body", [
    ("status.get", "nosuch", "get", "/v1/status/nosuch", None),
    ("status.get", "BAD!", "get", "/v1/status/BAD!", None),
    ("status.update", {"id": "other", **BEAT}, "put", "/v1/servers/other/status", BEAT),
    ("status.update", {"id": "SELF", **{**BEAT, "port": 0}}, "put", "/v1/servers/SELF/status",
     {**BEAT, "port": 0}),
    ("status.update", {"id": "SELF"}, "put", "/v1/servers/SELF/status", {}),
    ("server.create", "x", "post", "/v1/servers", {"name": "x"}),
    ("message.send", "nosuchsrv hello", "post", "/v1/messages",
     {"to": "nosuchsrv", "body": "hello"}),
    ("message.send", "SELF", "post", "/v1/messages", {"to": "SELF"}),
])
def test_error_codes_match_http(relay, api, client, cmd, args, method, path, body):
    server_id, key, headers = server_creds(api)

    def swap(v):
        return json.loads(json.dumps(v).replace("SELF", server_id))

    args, path, body = swap(args), path.replace("SELF", server_id), swap(body)
    resp = getattr(client, method)(path, json=body, headers=headers)
    want = resp.json["error"]
    got = authed(relay.port, server_id, key).cmd(cmd, args)
    assert (got["state"], got["code"], got["msg"]) == ("ERROR", want["code"], want["message"])


# --- contract: every operation in the registry behaves the same over HTTP and the relay -----
@pytest.mark.parametrize("who", ["anonymous", "admin", "server", "player"])
def test_every_operation_answers_like_http(relay, client, api, who):
    token = {"anonymous": None, "admin": ADMIN_TOKEN,
             "server": lambda: api.token(api.server("contract")[1]),
             "player": lambda: api.token(api.player("contract"))}[who]
    token = token() if callable(token) else token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    c = greeted(relay.port, "CLIENT")
    if token:
        assert c.cmd("TOKEN", token)["state"] == "OK"
    for name, op in sorted(load().items()):
        if name == "session.logout" and who == "player":
            continue  # the HTTP call would end the session both transports share
        path_args = {f.name: "xx" for f in op.fields if f.where == "path"}
        path = op.path.format(**path_args)
        body = {} if any(f.where == "body" for f in op.fields) else None
        resp = client.open(path, method=op.method, json=body, headers=headers)
        got = c.cmd(name, path_args)
        if resp.status_code < 300:
            assert got["state"] == "OK", (name, got)
        else:
            assert (got["state"], got["code"]) == ("ERROR", resp.json["error"]["code"]), name


def _over_relay(relay: Relay, op: Any, real: dict[str, str],
                headers: dict[str, str]) -> dict[str, Any]:
    c = greeted(relay.port, "CLIENT")
    if headers:
        assert c.cmd("TOKEN", headers["Authorization"].removeprefix("Bearer "))["state"] == "OK"
    got = c.cmd(op.name, real_value(op.example["request"], real))
    c.close()
    return got


@pytest.mark.parametrize("op", sorted(load().values(), key=lambda op: op.name),
                         ids=lambda op: op.name)
def test_every_example_answers_the_same_data_over_http_and_relay(relay, api, r, op):
    """Success payloads compared, each operation's documented example in the world of real
    fixtures (tests/world.py): a read answers exactly the same data over both transports, in one
    world; a write, run in two fresh worlds (it changes its world; ids, tokens and times are new
    in each), answers the same keys with values of the same types."""
    real, callers = world(api, op.name)
    headers = callers[apidoc.caller_kind(op)]
    ex = real_example(op, real)
    resp = api.client.open(ex.url, method=ex.method, headers=headers, json=ex.body)
    assert resp.status_code < 300, (op.name, resp.json)
    want = None if resp.status_code == 204 else resp.json
    if not op.reads:
        r.flushall()
        real, callers = world(api, op.name)
        headers = callers[apidoc.caller_kind(op)]
    got = _over_relay(relay, op, real, headers)
    assert got["state"] == "OK", (op.name, got)
    if op.reads:
        assert got.get("data") == want, op.name
    else:
        assert _shape(got.get("data")) == _shape(want), (op.name, got.get("data"), want)


def _shape(value: Any) -> Any:
    """Keys all the way down, values that are not new in each world (ids, tokens, times)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__
