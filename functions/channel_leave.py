from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.registry import SERVER, operation
from shared.schema import CHANNEL, SERVER_PATH_ID, Str


@operation("channel.leave", "DELETE", "/v1/servers/{id}/channels/{channel}", auth=SERVER,
           owner="id", aliases=("PART",),
           fields=(SERVER_PATH_ID,
                   Str("channel", where="path", pattern=CHANNEL,
                       doc="channel name, case-insensitive")),
           example={"request": {"id": "k3x9q2w7m1ab", "channel": "lobby"}, "response": None})
def handler(ctx: Ctx, args: dict[str, Any]) -> None:
    """Leave a channel: #channel messages stop reaching the calling server.

    Answers 204, also when the server was not in the channel.

    Internals:
    Removes the membership from both sets in one MULTI/EXEC.
    """
    name, server_id = args["channel"].lower(), args["id"]
    tx = ctx.redis.pipeline()
    tx.srem(keys.channel(name), server_id)
    tx.srem(keys.server_channels(server_id), name)
    tx.execute()
    return None
