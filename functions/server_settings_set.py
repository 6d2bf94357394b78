from __future__ import annotations

from typing import Any

from shared import keys, settings
from shared.registry import SERVER, operation
from shared.schema import SERVER_ID, Str


@operation("server.settings.set", "PUT", "/v1/servers/{id}/settings/{key}", auth=SERVER,
           owner="id", fields=(Str("id", where="path", pattern=SERVER_ID), settings.KEY,
                               settings.VALUE))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Store one setting of the calling server; returns ``{key, value}``.

    Same rules as player settings: any JSON except null, at most SETTINGS_VALUE_MAX bytes
    (413 too_large), at most SETTINGS_KEYS_MAX keys (409 too_many_settings when adding one
    more; replacing is fine). One Redis round trip (a script).
    """
    return settings.put(ctx, keys.server_settings(args["id"]), args["key"], args["value"])
