from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.redis_conn import Lua, Ordered
from shared.registry import ADMIN, operation
from shared.schema import SERVER_PATH_ID
from shared.storage import revocations

# KEYS: an account. ARGV: server id. The player goes offline if the account names the server.
OFFLINE = Lua("""
if redis.call('HGET', KEYS[1], 'server') == ARGV[1] then redis.call('HDEL', KEYS[1], 'server') end
return 0""")


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
    Ordered steps, each command on one hash tag (docs/CLUSTER.md): read whether it exists, its
    channels and players; then take it out of the status (bumping the list's version), the
    directory, its channels and its players' accounts, and delete its inbox; the server's own
    keys (its record, settings and player set) go last, so a crash in between leaves a server
    that still exists, and a retry finishes. Last, one entry in the revocations stream ends the
    relay connections that used its key. Two round trips on one Redis (the writes are one
    MULTI/EXEC).
    """
    sid = args["id"]
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.exists(keys.server(sid))
    pipe.smembers(keys.server_channels(sid))
    pipe.smembers(keys.server_players(sid))
    found, channels, online = pipe.execute()
    if not found:
        raise NotFound(f"no server with id {sid}")
    steps = Ordered(ctx.redis)
    pipe = steps.pipe
    pipe.zrem(keys.status_live(), sid)
    pipe.hdel(keys.status_data(), sid)
    pipe.incr(keys.status_version())  # the web's cached server list (shared/web/pages.py)
    pipe.srem(keys.servers_all(), sid)
    for c in sorted(channels):
        pipe.srem(keys.channel(c), sid)
    pipe.delete(keys.inbox(sid))  # one key per DEL: a cluster pipeline takes no more
    pipe.delete(keys.server_channels(sid))
    for lname in sorted(online):
        OFFLINE(ctx.redis, [keys.player(lname)], [sid], pipeline=pipe)
    pipe = steps.then().pipe
    for key in (keys.server_players(sid), keys.server_settings(sid), keys.server(sid)):
        pipe.delete(key)
    revocations.announce(steps.then().pipe, revocations.SERVER, sid, "server_deleted")
    steps.execute()
