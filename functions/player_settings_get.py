from __future__ import annotations

from typing import Any

from shared import keys, settings
from shared.players import NAME
from shared.registry import PLAYER, operation


@operation("player.settings.get", "GET", "/v1/players/{name}/settings", auth=PLAYER,
           owner="name", fields=(NAME,))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Every setting of the calling player: ``{settings: {key: value}}`` (empty when none).

    Only that player may read them (403 for anyone else, 401 anonymous). One Redis round trip.
    """
    return settings.get_all(ctx, keys.player_settings(args["name"].lower()))
