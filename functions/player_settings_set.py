from __future__ import annotations

from typing import Any

from shared import keys, settings
from shared.players import NAME
from shared.registry import PLAYER, operation


@operation("player.settings.set", "PUT", "/v1/players/{name}/settings/{key}", auth=PLAYER,
           owner="name", fields=(NAME, settings.KEY, settings.VALUE))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Store one setting of the calling player; returns ``{key, value}``.

    Stores the value as JSON text in the player's settings hash (a script checks the key count
    in the same step). ``value``: any JSON except null (use DELETE), at most SETTINGS_VALUE_MAX
    bytes serialized, else 413 too_large. Adding a key past SETTINGS_KEYS_MAX: 409
    too_many_settings; replacing an existing key always works.
    """
    return settings.put(ctx, keys.player_settings(args["name"].lower()), args["key"],
                        args["value"])
