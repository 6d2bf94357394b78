"""The API reference (/docs, /openapi.json, docs/API.md) says what the code does.

Every operation has an example; its request passes the operation's own validation, and sent for
real (against a small world of players, servers, boards, mail and messages) it answers the
documented status with the documented keys. Data generated from the OpenAPI document passes
validation. Limits shown are the running configuration's.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from shared import apidoc, openapi, pages
from shared.registry import load
from shared.schema import LINE, validate
from shared.storage import webhooks
from tests.conftest import make_config

OPS = [op for _, ops in apidoc.grouped(load()) for op in ops]
IDS = [op.name for op in OPS]
# the example values a real world replaces (ids and secrets are random)
SERVER, OTHER_SERVER, TOKEN, MAIL = ("k3x9q2w7m1ab", "t5y1u8i2o6pz",
                                     "p.YWxpY2U.EXAMPLE-session-token", "m4t8z1c6v0bn")
WEBHOOK = "w7h2k9d4x1qe"
ALICE_PASSWORD = "correct-horse-42"  # as in the player.password and session.login examples
JARGON = re.compile(r"round trip|\bscripts?\b|\bLua\b|(?-i:MULTI|EXEC|ZCARD|XREAD)|hash tag"
                    r"|pipeline|\bRedis\b|sha256", re.I)


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_every_operation_has_an_example_its_own_validation_accepts(op, config):
    assert op.example is not None, f"{op.name}: add example= (last keyword of @operation)"
    assert set(op.example) <= {"request", "response", "status"}
    validate(op.fields, op.example["request"], config)
    ex = apidoc.example(op)
    assert ex is not None and "{" not in ex.url  # every path field is given
    assert (ex.response is None) == (ex.status == 204)


def _shape(value: Any) -> Any:
    """Keys all the way down (``meta`` is the client's own JSON); a list of objects by its
    first item."""
    if isinstance(value, dict):
        return {k: None if k == "meta" else _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value and isinstance(value[0], dict | list) else []
    return None


def _world(api: Any, op_name: str) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Two live servers, players alice and bob online on the first, a board with both their
    records, a mail from bob to alice, a message to the first server, settings of alice and the
    server, the server in channel lobby. Returns (example value -> real value, headers by kind)."""
    c = api.client
    sid, srv = api.server("Desert CTF #1")
    sid2, srv2 = api.server("Other")
    for s, h in ((sid, srv), (sid2, srv2)):
        assert api.heartbeat(s, h).status_code == 200
    real = {SERVER: sid, OTHER_SERVER: sid2}
    callers = {"anonymous": {}, "admin": api.admin, "server": srv}
    if op_name == "player.register":  # alice must not exist yet
        return real, callers
    alice, bob = api.player("alice", ALICE_PASSWORD), api.player("bob", "bob-password-1")
    callers["player"] = alice
    real[TOKEN] = api.token(alice)
    for player in (alice, bob):
        assert api.join(sid, srv, player).status_code == 200
    if op_name != "board.create":  # it must create the board
        assert c.put("/v1/boards/ctf.ac_desert", json={"order": "desc", "operator": "best"},
                     headers=api.admin).status_code == 201
        for name, score in (("alice", 7), ("bob", 5)):
            assert c.post("/v1/boards/ctf.ac_desert/records", headers=srv,
                          json={"player": name, "score": score, "meta": {"flags": score}}
                          ).status_code == 200
    sent = c.post("/v1/mail", json={"to": "alice", "subject": "hi", "body": "gg"}, headers=bob)
    real[MAIL] = sent.json["id"]
    assert c.post("/v1/messages", json={"to": sid, "body": "hello"},
                  headers=srv2).status_code == 202
    assert c.put(f"/v1/servers/{sid}/channels/lobby", headers=srv).status_code == 200
    for key, value in (("hud.scale", 1.25), ("crosshair", "dot")):
        assert c.put(f"/v1/players/alice/settings/{key}", json={"value": value},
                     headers=alice).status_code == 200
    assert c.put(f"/v1/servers/{sid}/settings/motd", json={"value": "hi"},
                 headers=srv).status_code == 200
    hook = c.post("/v1/webhooks", json={"url": "https://hooks.example.com/ssm",
                                        "events": ["record.top"]}, headers=api.admin).json["id"]
    attempt = {"at": 1.0, "event": "record.top", "event_id": "b:x/1-0", "attempt": 1,
               "status": 200, "error": None, "ms": 5, "outcome": "delivered"}
    webhooks.record(c.application.extensions["ssm"]["redis"], hook, "job", attempt,
                    "delivered", None)
    real[WEBHOOK] = hook
    return real, callers


def _real(value: Any, real: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _real(v, real) for k, v in value.items()}
    if isinstance(value, list):
        return [_real(v, real) for v in value]
    return real.get(value, value) if isinstance(value, str) else value


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_example_sent_for_real_answers_as_documented(api, op):
    real, callers = _world(api, op.name)
    ex = apidoc.example(dataclasses.replace(
        op, example={**op.example, "request": _real(op.example["request"], real)}))
    resp = api.client.open(ex.url, method=ex.method, headers=callers[apidoc.caller_kind(op)],
                           json=ex.body)
    assert resp.status_code == ex.status, (op.name, resp.data[:300])
    got = None if resp.status_code == 204 else resp.json
    assert _shape(got) == _shape(ex.response), op.name


def _param_text(value: Any) -> str:
    """A query or path value as a client puts it in a URL."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _bounded(schema: dict[str, Any], field: Any) -> dict[str, Any]:
    """JSON Schema cannot say "at most N bytes encoded": keep generated JSON values small (any
    other rule of the schema kept)."""
    if field.kind == "json" and field.max_bytes is not None:
        small = {"type": ["integer", "boolean", "string", "null"], "maxLength": 20}
        return {**small, **{k: v for k, v in schema.items() if k == "not"}}
    return schema


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_data_generated_from_openapi_passes_validation(op, config):
    doc = openapi.document(load(), config)["paths"][op.path][op.method.lower()]
    fields = {f.name: f for f in op.fields}
    params = {p["name"]: _bounded(p["schema"], fields[p["name"]]) for p in doc["parameters"]
              if p["in"] in ("path", "query")}
    required = [p["name"] for p in doc["parameters"] if p["required"] and p["name"] in params]
    body = doc.get("requestBody", {}).get("content", {}).get("application/json", {})
    body_schema = dict(body.get("schema", {"type": "object", "properties": {},
                                           "additionalProperties": False}))
    body_schema["properties"] = {k: _bounded(v, fields[k])
                                 for k, v in body_schema["properties"].items()}
    strategy = st.tuples(from_schema({"type": "object", "properties": params,
                                      "required": required, "additionalProperties": False}),
                         from_schema(body_schema))

    @settings(max_examples=15, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def check(drawn: tuple[dict[str, Any], dict[str, Any]]) -> None:
        text, typed = drawn
        raw = {**typed, **{k: _param_text(v) for k, v in text.items()}}
        validate(op.fields, raw, config, frozenset(text))

    check()


@pytest.fixture
def custom(redis_server, r, clock):
    """An app whose limits differ from the defaults, and its config."""
    from wsgi import create_app

    config = make_config(redis_server.url, mail_body_max=1234, mailbox_max=77,
                         settings_value_max=999, status_ttl=45)
    return create_app(config, r, clock=clock).test_client(), config


def test_openapi_declares_each_kind_of_constraint_with_the_configured_limits(custom):
    client, _ = custom
    doc = client.get("/openapi.json").json
    paths = doc["paths"]
    mail = paths["/v1/mail"]["post"]["requestBody"]["content"]["application/json"]
    body = mail["schema"]
    assert body["required"] == ["to", "body"] and body["additionalProperties"] is False
    assert body["properties"]["body"]["maxLength"] == 1234  # a setting, resolved
    assert body["properties"]["body"]["minLength"] == 1
    assert body["properties"]["to"]["pattern"].startswith("^(?:")
    assert body["properties"]["to"]["pattern"].endswith(")$")
    assert body["properties"]["subject"]["pattern"] == f"^{LINE}$"  # single-line text
    assert mail["example"]["to"] == "bob"
    status = paths["/v1/servers/{id}/status"]["put"]["requestBody"]["content"][
        "application/json"]["schema"]["properties"]
    assert (status["port"]["minimum"], status["port"]["maximum"]) == (1, 65535)
    assert status["players"]["maxItems"] == 64 and status["players"]["items"]["maxLength"] == 15
    board = paths["/v1/boards/{board}"]["put"]["requestBody"]["content"]["application/json"]
    assert board["schema"]["properties"]["order"]["enum"] == ["asc", "desc"]
    value = paths["/v1/players/{name}/settings/{key}"]["put"]["requestBody"]["content"][
        "application/json"]["schema"]["properties"]["value"]
    assert value["not"] == {"type": "null"} and "at most 999 bytes" in value["description"]
    top = {p["name"]: p for p in paths["/v1/boards/{board}/records"]["get"]["parameters"]}
    assert top["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100,
                                      "default": 10} and top["limit"]["required"] is False
    assert top["board"]["required"] is True
    responses = paths["/v1/mail"]["post"]["responses"]
    assert responses["201"]["content"]["application/json"]["example"] == {"id": MAIL}
    assert "mailbox_full" in responses["409"]["description"]
    assert "77 mails" in responses["409"]["description"]


def test_openapi_tags_group_operations_in_reading_order(client):
    doc = client.get("/openapi.json").json
    tags = [t["name"] for t in doc["tags"]]
    assert tags[:2] == ["Players and sessions", "Game servers"]
    assert "Mail between players" in tags
    tagged = {op["operationId"]: op["tags"] for p in doc["paths"].values() for op in p.values()}
    assert tagged["session.login"] == ["Players and sessions"]
    assert tagged["record.top"] == ["Leaderboards"]
    assert tagged["mail.read"] == ["Mail between players"]
    assert all(len(t) == 1 and t[0] in tags for t in tagged.values())


def test_docs_page_reads_in_areas_with_rules_errors_and_examples(custom):
    client, _ = custom
    page = client.get("/docs").get_data(as_text=True)
    heads = [page.index(f'<h2 id="{key}">') for key in
             ("start", "players", "servers", "status", "boards", "messages", "mail")]
    assert heads == sorted(heads)  # getting started first, then the areas in reading order
    order = [page.index(f'<section class="op" id="{op.name}">') for op in OPS]
    assert order == sorted(order) and len(OPS) == len(load())
    assert page.index('id="player.register"') < page.index('id="session.login"') \
        < page.index('id="player.get"')  # not alphabetical
    mail = page[page.index('id="mail.send"'):page.index('id="mail.unread_count"')]
    assert "1 to 1234 characters" in mail  # the running config's limit
    assert "at most 77 mails" in mail and "MAILBOX_MAX" not in page
    assert "<td><code>409 mailbox_full</code></td>" in mail
    assert "curl -X POST &#34;$API/v1/mail&#34;" in mail
    assert "&#34;to&#34;: &#34;bob&#34;" in mail  # the example request, escaped
    assert "Who may call: a player or a game server." in mail
    assert "<code>MAIL</code>" in mail  # the relay alias
    assert 'class="req">yes</span>' in mail


def test_docs_render_markup_and_leave_out_jargon(custom):
    client, config = custom
    page = client.get("/docs").get_data(as_text=True)
    spec = json.dumps(client.get("/openapi.json").json)
    md = apidoc.render()
    for text in (page, spec, md):
        assert not re.search(r"(?<!`)``(?!`)", text)  # code fences (```) are fine
        assert not JARGON.search(re.sub(r"<[^>]+>", " ", text)), JARGON.search(text)
    assert "Internals" not in page
    assert "<code>server_offline</code>" in page


def test_markup_paragraphs_lists_code_and_escaping():
    cfg = make_config("redis://unused", status_ttl=45, session_ttl=172800)
    got = apidoc.to_html("A ``<b>`` & b,\nwrapped:\n- one ``x``\n- two\n  continued\n\n"
                         "Within STATUS_TTL seconds; SESSION_TTL seconds.", cfg)
    assert got == ("<p>A <code>&lt;b&gt;</code> &amp; b, wrapped:</p>\n"
                   "<ul><li>one <code>x</code></li><li>two continued</li></ul>\n"
                   "<p>Within 45 seconds; 2 days.</p>")
    assert apidoc.to_markdown("a ``x``\n\n- y", cfg) == "a `x`\n\n- y"


def test_an_errors_item_out_of_form_is_refused():
    op = dataclasses.replace(load()["mail.read"], description="Text.\n\nErrors:\n- gone: 404")
    with pytest.raises(ValueError, match="mail.read"):
        apidoc.errors(op)


def test_docs_page_renders_without_a_request_context(config):
    assert "SSMGlobal API" in pages.docs_page(load(), config)
