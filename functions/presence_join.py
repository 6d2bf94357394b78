from __future__ import annotations

import json
from typing import Any

from shared import jobs, keys
from shared.auth import session_owner, sha256
from shared.errors import Conflict, InvalidCredentials
from shared.registry import SERVER, operation
from shared.schema import SERVER_ID, Str
from shared.status import is_live


@operation("presence.join", "POST", "/v1/servers/{id}/players", auth=SERVER, owner="id",
           aliases=("ONLINE",),
           fields=(Str("id", where="path", pattern=SERVER_ID),
                   Str("token", max_len=512, secret=True, doc="the player's session token")))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """A player (proven by their session token) comes online on this server.

    Moves the player from any other server: removes them from the old server's player set,
    adds them to this one's, sets the account's ``server`` and ``last_seen``; when they have
    unread mail, queues the pending-mail notice in the same MULTI/EXEC. Joining again where the
    player already is only refreshes ``last_seen`` (and queues the notice again if mail waits).
    Returns ``{player: {id, name}, server, online: true}``. Raises invalid_credentials (401)
    for a bad or expired player token, server_not_live (409) without a heartbeat within
    STATUS_TTL. Two round trips (reads, then one MULTI) plus a third only if a concurrent join
    moved the player in between (to clear that server's set).
    """
    server_id, token = args["id"], args["token"]
    lname = session_owner(token)
    if lname is None:
        raise InvalidCredentials("the player token is invalid or expired")
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.get(keys.player_session(lname, sha256(token)))
    pipe.hmget(keys.player(lname), "id", "name", "server")
    pipe.zscore(keys.status_live(), server_id)
    pipe.zcard(keys.mailbox_unread(lname))
    session, (player_id, name, old), live, unread = pipe.execute()
    if session is None or player_id is None or json.loads(session)["id"] != player_id:
        raise InvalidCredentials("the player token is invalid or expired")
    if not is_live(live, ctx):
        raise Conflict(f"server {server_id} is not live: send a heartbeat first",
                       code="server_not_live")
    tx = ctx.redis.pipeline()
    tx.multi()
    tx.hget(keys.player(lname), "server")
    if old and old != server_id:
        tx.srem(keys.server_players(old), lname)
    tx.sadd(keys.server_players(server_id), lname)
    tx.hset(keys.player(lname), mapping={"server": server_id, "last_seen": int(ctx.now())})
    if unread:
        jobs.enqueue_pending_notice(ctx.redis, tx, lname, server_id)
    previous = tx.execute()[0]
    if previous and previous not in (old, server_id):
        ctx.redis.srem(keys.server_players(previous), lname)
    return {"player": {"id": player_id, "name": name}, "server": server_id, "online": True}
