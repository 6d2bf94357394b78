from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.registry import PLAYER, operation
from shared.schema import PLAYER_PATH_NAME
from shared.storage import settings


@operation("player.settings.delete", "DELETE", "/v1/players/{name}/settings/{key}",
           auth=PLAYER, owner="name", fields=(PLAYER_PATH_NAME, settings.KEY),
           example={"request": {"name": "alice", "key": "hud.scale"}, "response": None})
def handler(ctx: Ctx, args: dict[str, Any]) -> None:
    """Delete one setting of the calling player.

    Answers 204 also when the setting was not there, so repeating the call is harmless.
    """
    settings.remove(ctx, keys.player_settings(args["name"].lower()), args["key"])
