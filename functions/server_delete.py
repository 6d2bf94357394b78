from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.redis_conn import Lua
from shared.registry import ADMIN, operation
from shared.schema import SERVER_PATH_ID

# KEYS: server, settings, live index, status data, inbox, its channels, directory, players,
# then one key per channel, then one account per online player. ARGV: id, channel count.
DELETE = Lua("""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local id, nc = ARGV[1], tonumber(ARGV[2])
redis.call('ZREM', KEYS[3], id)
redis.call('HDEL', KEYS[4], id)
redis.call('SREM', KEYS[7], id)
for i = 9, 8 + nc do redis.call('SREM', KEYS[i], id) end
for i = 9 + nc, #KEYS do
  if redis.call('HGET', KEYS[i], 'server') == id then redis.call('HDEL', KEYS[i], 'server') end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[5], KEYS[6], KEYS[8])
return 1""")


@operation("server.delete", "DELETE", "/v1/servers/{id}", auth=ADMIN, audit="id",
           fields=(SERVER_PATH_ID,),
           example={"request": {"id": "k3x9q2w7m1ab"}, "response": None})
def handler(ctx: Ctx, args: dict[str, Any]) -> None:
    """Delete a game server (admin); its key stops working at once.

    Removes the server, its settings, its status (it leaves the server list at once), its message
    inbox and its channels, and sets the players online on it offline. Records it submitted stay
    on the leaderboards. Answers 204.

    Errors:
    - ``not_found`` (404): no server has this id.

    Internals:
    Two round trips: a pipelined read of its channels and players, then one script that deletes
    atomically.
    """
    sid = args["id"]
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.smembers(keys.server_channels(sid))
    pipe.smembers(keys.server_players(sid))
    channels, online = (sorted(x) for x in pipe.execute())
    ks = [keys.server(sid), keys.server_settings(sid), keys.status_live(), keys.status_data(),
          keys.inbox(sid), keys.server_channels(sid), keys.servers_all(), keys.server_players(sid)]
    ks += [keys.channel(c) for c in channels] + [keys.player(p) for p in online]
    if not DELETE(ctx.redis, ks, [sid, len(channels)]):
        raise NotFound(f"no server with id {sid}")
