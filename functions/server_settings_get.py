from __future__ import annotations

from typing import Any

from shared import keys, settings
from shared.registry import SERVER, operation
from shared.schema import SERVER_ID, Str


@operation("server.settings.get", "GET", "/v1/servers/{id}/settings", auth=SERVER, owner="id",
           fields=(Str("id", where="path", pattern=SERVER_ID),))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Every setting of the calling server: ``{settings: {key: value}}`` (empty when none).

    Only that server may read them (403 for others, admin included). One Redis round trip.
    """
    return settings.get_all(ctx, keys.server_settings(args["id"]))
