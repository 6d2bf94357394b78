from __future__ import annotations

from typing import Any

from shared import keys, settings
from shared.players import NAME
from shared.registry import PLAYER, operation


def reads(pipe: Any, args: dict[str, Any], who: str) -> None:  # noqa: ARG001
    pipe.hgetall(keys.player_settings(args["name"].lower()))


@operation("player.settings.get", "GET", "/v1/players/{name}/settings", auth=PLAYER,
           owner="name", fields=(NAME,), prefetch=reads)
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Every setting of the calling player: ``{settings: {key: value}}`` (empty when none).

    Only that player may read them (403 for anyone else, 401 anonymous). The read travels with
    the credential check: one round trip in all.
    """
    (raw,) = ctx.fetch(reads, args)
    return settings.render(raw)
