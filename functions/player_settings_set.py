from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.registry import PLAYER, operation
from shared.schema import PLAYER_PATH_NAME
from shared.storage import settings


@operation("player.settings.set", "PUT", "/v1/players/{name}/settings/{key}", auth=PLAYER,
           owner="name", fields=(PLAYER_PATH_NAME, settings.KEY, settings.VALUE),
           example={"request": {"name": "alice", "key": "hud.scale", "value": 1.25},
                    "response": {"key": "hud.scale", "value": 1.25}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Store one setting of the calling player (create or replace).

    ``value`` is any JSON value except null (to remove a setting, delete it), at most
    SETTINGS_VALUE_MAX bytes once encoded. A player holds at most SETTINGS_KEYS_MAX settings;
    replacing one they already have always works.

    Errors:
    - ``too_large`` (413): ``value`` is longer than SETTINGS_VALUE_MAX bytes once encoded.
    - ``too_many_settings`` (409): the player already has SETTINGS_KEYS_MAX settings and this key
      is new.

    Internals:
    Stores the value as JSON text in the settings hash; a script checks the key count in the same
    step.
    """
    return settings.put(ctx, keys.player_settings(args["name"].lower()), args["key"],
                        args["value"])
