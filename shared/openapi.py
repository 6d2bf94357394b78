"""OpenAPI 3.1 document generated from the operation registry."""

from __future__ import annotations

from typing import Any

from shared.registry import ANYONE, Operation
from shared.schema import json_schema

ERROR = {"$ref": "#/components/schemas/Error"}


def document(registry: dict[str, Operation], config: Any) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in registry.values():
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "SSMGlobal", "version": "1.0.0",
                 "description": "Global backend for (server)² Modification game servers. "
                                "Every operation is also a relay command (TCP, port "
                                f"{config.relay_port}) under its operation id."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {
                "error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}}}}}},
        },
    }


def who(op: Operation) -> str:
    if op.auth == ANYONE:
        return "anyone"
    kinds = " or ".join(sorted(op.auth))
    return f"{kinds} (own {op.owner} only)" if op.owner else kinds


def _operation(op: Operation) -> dict[str, Any]:
    params = [{"name": f.name, "in": f.where, "required": f.where == "path" or f.required,
               "schema": json_schema(f)} for f in op.fields if f.where in ("path", "query")]
    body = [f for f in op.fields if f.where == "body"]
    out: dict[str, Any] = {
        "operationId": op.name, "summary": op.summary,
        "description": (op.description + "\n\n" if op.description else "") + f"Who: {who(op)}.",
        "parameters": params,
        "responses": {str(op.status): {"description": "success"},
                      "default": {"description": "error",
                                  "content": {"application/json": {"schema": ERROR}}}},
    }
    if op.idempotent:
        params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                       "schema": {"type": "string", "maxLength": 64}})
    if op.auth != ANYONE:
        out["security"] = [{"bearer": []}]
    if body:
        out["requestBody"] = {"required": any(f.required for f in body), "content": {
            "application/json": {"schema": {
                "type": "object", "additionalProperties": False,
                "required": [f.name for f in body if f.required],
                "properties": {f.name: json_schema(f) for f in body}}}}}
    return out
