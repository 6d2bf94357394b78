from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.registry import SERVER, operation
from shared.schema import SERVER_PATH_ID
from shared.storage import settings


@operation("server.settings.set", "PUT", "/v1/servers/{id}/settings/{key}", auth=SERVER,
           owner="id", fields=(SERVER_PATH_ID, settings.KEY,
                               settings.VALUE),
           example={"request": {"id": "k3x9q2w7m1ab", "key": "motd",
                                "value": "Welcome to Desert CTF!"},
                    "response": {"key": "motd", "value": "Welcome to Desert CTF!"}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Store one setting of the calling server (create or replace).

    Same rules as player settings: ``value`` is any JSON value except null, at most
    SETTINGS_VALUE_MAX bytes once encoded; a server holds at most SETTINGS_KEYS_MAX settings, and
    replacing one it already has always works.

    Errors:
    - ``too_large`` (413): ``value`` is longer than SETTINGS_VALUE_MAX bytes once encoded.
    - ``too_many_settings`` (409): the server already has SETTINGS_KEYS_MAX settings and this key
      is new.
    """
    return settings.put(ctx, keys.server_settings(args["id"]), args["key"], args["value"])
