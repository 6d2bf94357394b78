from __future__ import annotations

from typing import Any

from shared import keys, settings
from shared.registry import SERVER, operation
from shared.schema import SERVER_ID, Str


@operation("server.settings.delete", "DELETE", "/v1/servers/{id}/settings/{key}", auth=SERVER,
           owner="id", fields=(Str("id", where="path", pattern=SERVER_ID), settings.KEY))
def handler(ctx: Any, args: dict[str, Any]) -> None:
    """Delete one setting of the calling server (204; also 204 when the key was not set)."""
    settings.remove(ctx, keys.server_settings(args["id"]), args["key"])
