from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.redis_conn import Lua, Ordered
from shared.registry import SERVER, operation
from shared.schema import PLAYER_PATH_NAME, SERVER_PATH_ID

# KEYS: account. ARGV: server id, now. Returns -1 unknown player, 0 not on it, 1 went offline.
LEAVE = Lua("""
local acct = redis.call('HMGET', KEYS[1], 'id', 'server')
if not acct[1] then return -1 end
if acct[2] ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'server')
redis.call('HSET', KEYS[1], 'last_seen', ARGV[2])
return 1""")


@operation("presence.leave", "DELETE", "/v1/servers/{id}/players/{name}", auth=SERVER,
           owner="id", status=204, aliases=("OFFLINE",),
           fields=(SERVER_PATH_ID, PLAYER_PATH_NAME),
           example={"request": {"id": "k3x9q2w7m1ab", "name": "alice"}, "response": None})
def handler(ctx: Ctx, args: dict[str, Any]) -> None:
    """A player leaves the calling server and goes offline.

    Only a player online on this server goes offline; for a player elsewhere the call changes
    nothing (a server cannot log a player off another server). Answers 204 either way.

    Errors:
    - ``not_found`` (404): no player has this name.

    Internals:
    One MULTI: a script on the account, and SREM from this server's player set.
    """
    server_id, lname = args["id"], args["name"].lower()
    steps = Ordered(ctx.redis)  # the account first, then the server's player set (an index)
    LEAVE(ctx.redis, [keys.player(lname)], [server_id, int(ctx.now())], pipeline=steps.pipe)
    steps.then().pipe.srem(keys.server_players(server_id), lname)
    left, _ = steps.execute()
    if left == -1:
        raise NotFound(f"no player named {args['name']}")
    return None
