from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.errors import TooManyChannels
from shared.redis_conn import Lua
from shared.registry import SERVER, operation
from shared.schema import CHANNEL, SERVER_PATH_ID, Str

# KEYS: the server's channel set, the channel's member set; ARGV: channel, server id, cap
JOIN = Lua("""
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 and
   redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return 1""")


@operation("channel.join", "PUT", "/v1/servers/{id}/channels/{channel}", auth=SERVER,
           owner="id", aliases=("JOIN",),
           fields=(SERVER_PATH_ID,
                   Str("channel", where="path", pattern=CHANNEL,
                       doc="channel name, case-insensitive")),
           example={"request": {"id": "k3x9q2w7m1ab", "channel": "lobby"},
                    "response": {"channel": "lobby", "joined": True}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Join a channel: messages sent to #channel then reach the calling server.

    Channel names are not case-sensitive (answered in lowercase). Joining a channel again changes
    nothing.

    Errors:
    - ``too_many_channels`` (409): the server already is in CHANNELS_PER_SERVER_MAX channels.

    Internals:
    One script adds the server to the channel and the channel to the server's set.
    """
    name, server_id = args["channel"].lower(), args["id"]
    cap = ctx.config.channels_per_server_max
    if not JOIN(ctx.redis, [keys.server_channels(server_id), keys.channel(name)],
                [name, server_id, cap]):
        raise TooManyChannels(f"a server may be in at most {cap} channels")
    return {"channel": name, "joined": True}
