from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.registry import PLAYER, operation
from shared.schema import PLAYER_PATH_NAME
from shared.storage import settings


def reads(pipe: Any, args: dict[str, Any], who: str) -> None:
    pipe.hgetall(keys.player_settings(args["name"].lower()))


@operation("player.settings.get", "GET", "/v1/players/{name}/settings", auth=PLAYER,
           owner="name", fields=(PLAYER_PATH_NAME,), prefetch=reads,
           example={"request": {"name": "alice"},
                    "response": {"settings": {"crosshair": "dot", "hud.scale": 1.25}}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """All of the calling player's settings, as stored by the game or client.

    Returns ``{"settings": {key: value}}``; empty when none are set. Only that player may read them.

    Internals:
    The read travels with the credential check: one round trip in all.
    """
    (raw,) = ctx.fetch(reads, args)
    return settings.render(raw)
