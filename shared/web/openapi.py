"""OpenAPI 3.1 document generated from the operation registry.

Every input constraint the validator applies is declared (type, required, minLength, maxLength,
anchored pattern, minimum, maximum, enum, maxItems; limits from settings resolved with the
running Config), so data generated from this document passes validation. Operations carry the
area tags of ``/docs``, their example, and the errors they may answer.
"""

from __future__ import annotations

from typing import Any

from shared.config import Config
from shared.registry import ANYONE, Operation
from shared.schema import Field, describe, json_schema
from shared.web import apidoc
from shared.web.apidoc import who

__all__ = ["document", "who"]

ERROR = {"$ref": "#/components/schemas/Error"}
JSON = "application/json"
ANY_JSON = {"meta", "value", "settings"}


def document(registry: dict[str, Operation], config: Config) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    tags = []
    for area, ops in apidoc.grouped(registry):
        tags.append({"name": area.title, "description": apidoc.with_settings(area.intro, config)})
        for op in ops:
            paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, area.title, config)
    return {
        "openapi": "3.1.0",
        "info": {"title": "SSMGlobal", "version": "1.0.0",
                 "description": "Global backend for (server)² Modification game servers. "
                                "Human-readable reference: `/docs`. Every operation is also a "
                                f"relay command (TCP, port {config.relay_port}) under its "
                                "operation id."},
        "tags": tags,
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "the admin token, a game server's key (server.create) or a "
                               "player's session token (session.login)"}},
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {
                "error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}}}}}},
        },
    }


def _operation(op: Operation, tag: str, config: Config) -> dict[str, Any]:
    example = apidoc.example(op)
    request = example.request if example else {}
    params = []
    for f in op.fields:
        if f.where in ("path", "query"):
            param = {"name": f.name, "in": f.where, "required": f.where == "path" or f.required,
                     "schema": _schema(f, config)}
            if f.name in request:
                param["example"] = request[f.name]
            params.append(param)
    body = [f for f in op.fields if f.where == "body"]
    text = apidoc.to_markdown(apidoc.description(op), config)
    out: dict[str, Any] = {
        "operationId": op.name, "tags": [tag], "summary": op.summary,
        "description": (text + "\n\n" if text else "") + f"Who may call: {who(op)}.",
        "parameters": params,
        "responses": _responses(op, example, config),
    }
    if op.idempotent:
        params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                       "description": "repeat the call safely: the first answer is replayed",
                       "schema": {"type": "string", "minLength": 1, "maxLength": 64}})
    if op.auth != ANYONE:
        out["security"] = [{"bearer": []}]
    if body:
        schema: dict[str, Any] = {
            "type": "object", "additionalProperties": False,
            "required": [f.name for f in body if f.required],
            "properties": {f.name: _schema(f, config) for f in body}}
        content: dict[str, Any] = {"schema": schema}
        if example and example.body is not None:
            content["example"] = example.body
        out["requestBody"] = {"required": any(f.required for f in body),
                              "content": {JSON: content}}
    return out


def _schema(f: Field, config: Config) -> dict[str, Any]:
    """The field's JSON Schema, its description in words with settings as their values, and
    the byte limit of a JSON value (which JSON Schema cannot express) said in it."""
    s = json_schema(f, config)
    words = [apidoc.inline_markdown(f.doc, config)] if f.doc else []
    if f.kind == "json":
        words += [apidoc.inline_markdown(r, config) for r in describe(f, config)]
    if words:
        s["description"] = "; ".join(words)
    return s


def _responses(op: Operation, example: apidoc.Example | None,
               config: Config) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "success"}
    if example and example.response is not None:
        ok["content"] = {JSON: {"schema": _shape(example.response),
                                "example": example.response}}
    out: dict[str, Any] = {str(op.status): ok}
    if example and example.status != op.status:
        out[str(example.status)] = ok
    by_status: dict[str, list[str]] = {}
    for err in apidoc.errors(op):
        by_status.setdefault(str(err.status), []).append(
            f"`{err.code}`: {apidoc.to_markdown(err.when, config)}")
    for status, lines in sorted(by_status.items()):
        out[status] = {"description": " ".join(lines), "content": {JSON: {"schema": ERROR}}}
    out["default"] = {"description": "another error (429 rate_limited, 503 unavailable, ...)",
                      "content": {JSON: {"schema": ERROR}}}
    return out


def _shape(value: Any, key: str = "") -> dict[str, Any]:
    """A sketch of an answer from its example: the keys, and each value's type or null (a value
    may be null where the example shows one; ``meta`` and ``value`` hold any JSON)."""
    if key in ANY_JSON or value is None:
        return {}
    if isinstance(value, dict):
        return {"type": "object", "properties": {k: _shape(v, k) for k, v in value.items()}}
    if isinstance(value, list):
        return {"type": "array", "items": _shape(value[0])} if value else {"type": "array"}
    kind = ("boolean" if isinstance(value, bool) else "integer" if isinstance(value, int)
            else "number" if isinstance(value, float) else "string")
    return {"type": [kind, "null"]}
