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

from shared.registry import load
from shared.schema import LINE, validate
from shared.web import apidoc, openapi, pages
from tests.conftest import make_config
from tests.world import MAIL, real_example, world

OPS = [op for _, ops in apidoc.grouped(load()) for op in ops]
IDS = [op.name for op in OPS]
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


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_example_sent_for_real_answers_as_documented(api, op):
    real, callers = world(api, op.name)
    ex = real_example(op, real)
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


def test_docs_page_has_the_pages_protections_and_its_style_still_applies(custom):
    """/docs: a CSP (no inline script; its one inline stylesheet admitted by hash), nosniff and
    no framing, like the players' pages."""
    import base64
    import hashlib

    client, _ = custom
    resp = client.get("/docs")
    csp = resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in csp and "script-src 'self';" in csp
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp
    style = re.search(r"<style>(.*?)</style>", resp.get_data(as_text=True), re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp


def test_no_rendered_doc_shows_a_setting_replaced_by_its_value_where_it_is_to_be_set(custom):
    """``WEBHOOK_ALLOW_PRIVATE=1`` once read ``0=1``: a setting named to be set stays a name."""
    client, _ = custom
    texts = {"/docs": client.get("/docs").get_data(as_text=True),
             "/openapi.json": json.dumps(client.get("/openapi.json").json, ensure_ascii=False),
             "API.md": apidoc.render()}
    for where, text in texts.items():
        assert not re.search(r"(?<![\w./?&-])\d+=\d", text), (where, re.search(
            r".{60}(?<![\w./?&-])\d+=\d.{20}", text))
        assert "WEBHOOK_ALLOW_PRIVATE=1" in text, where
