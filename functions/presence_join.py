from __future__ import annotations

from typing import Any

from shared import jobs, keys
from shared.auth import session_owner, sha256
from shared.dispatch import Ctx
from shared.errors import InvalidCredentials, ServerNotLive
from shared.redis_conn import Lua
from shared.registry import SERVER, operation
from shared.schema import SERVER_PATH_ID, Str
from shared.storage.status import cutoff_ms

# The old server's player-set key is built in the script from these two parts.
PLAYERS_KEY = keys.around(keys.server_players(keys.HOLE))

# KEYS: session, account, live index, unread zset, this server's player set.
# ARGV: server id, oldest live heartbeat (ms), now (s), player-set key prefix and suffix, lname.
# Returns -1 for a bad session, -2 when the server is not live, else {id, name, unread,
# 1 when the player was already online here, Redis TIME in ms (the clock notices are marked by)}.
JOIN = Lua("""
local sess = redis.call('GET', KEYS[1])
if not sess then return -1 end
local acct = redis.call('HMGET', KEYS[2], 'id', 'name', 'server')
if not acct[1] or cjson.decode(sess)['id'] ~= acct[1] then return -1 end
local beat = redis.call('ZSCORE', KEYS[3], ARGV[1])
if not beat or tonumber(beat) < tonumber(ARGV[2]) then return -2 end
if acct[3] and acct[3] ~= ARGV[1] then
  redis.call('SREM', ARGV[4] .. acct[3] .. ARGV[5], ARGV[6])
end
redis.call('SADD', KEYS[5], ARGV[6])
redis.call('HSET', KEYS[2], 'server', ARGV[1], 'last_seen', ARGV[3])
local t = redis.call('TIME')
return {acct[1], acct[2], redis.call('ZCARD', KEYS[4]), acct[3] == ARGV[1] and 1 or 0,
        tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)}""")


@operation("presence.join", "POST", "/v1/servers/{id}/players", auth=SERVER, owner="id",
           aliases=("ONLINE",),
           fields=(SERVER_PATH_ID,
                   Str("token", max_len=512, secret=True, doc="the player's session token")),
           example={"request": {"id": "k3x9q2w7m1ab", "token": "p.YWxpY2U.EXAMPLE-session-token"},
                    "response": {"player": {"id": "w2k7r9d1x5qa", "name": "alice"},
                                 "server": "k3x9q2w7m1ab", "online": True}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """A player comes online on the calling server, proven by their session token.

    The player logs in (``session.login``) from the game; the server passes their token here. A
    player is online on one server at a time: arriving here ends their presence anywhere else.
    The server must be live (a heartbeat within the last STATUS_TTL seconds). When the player has
    unread mail, the server then gets a mail notice for them. Calling again for a player already
    here changes nothing else.

    Errors:
    - ``invalid_credentials`` (401): the player's token is wrong or expired.
    - ``server_not_live`` (409): this server sent no heartbeat within STATUS_TTL seconds (send one,
      then retry); nothing changed.

    Internals:
    One script checks the token and the heartbeat and moves the player between the servers' player
    sets, setting the account's ``server`` and ``last_seen``. With unread mail the pending-mail
    notice job is queued before the answer, carrying the join time by Redis' clock (a second round
    trip only then); a crash between the two means no 2xx was sent, and the retried join queues it.
    """
    server_id, token = args["id"], args["token"]
    lname = session_owner(token)
    if lname is None:
        raise InvalidCredentials("the player token is invalid or expired")
    got = JOIN(ctx.redis,
               [keys.player_session(lname, sha256(token)), keys.player(lname), keys.status_live(),
                keys.mailbox_unread(lname), keys.server_players(server_id)],
               [server_id, cutoff_ms(ctx), int(ctx.now()), *PLAYERS_KEY, lname])
    if got == -1:
        raise InvalidCredentials("the player token is invalid or expired")
    if got == -2:
        raise ServerNotLive(f"server {server_id} is not live: send a heartbeat first")
    player_id, name, unread, was_here, joined_ms = got
    if unread and not was_here:
        jobs.enqueue_pending_notice(ctx.queue, lname, server_id, joined_ms)
    return {"player": {"id": player_id, "name": name}, "server": server_id, "online": True}
