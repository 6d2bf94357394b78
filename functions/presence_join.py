from __future__ import annotations

import json
from typing import Any

from shared import keys, queues
from shared.auth import session_owner, sha256
from shared.dispatch import Ctx
from shared.errors import InvalidCredentials, ServerNotLive
from shared.redis_conn import Lua, Ordered
from shared.registry import SERVER, operation
from shared.schema import SERVER_PATH_ID, Str
from shared.storage import bans
from shared.storage.status import cutoff_ms

# KEYS: session, account, the player's ban copies (one player's slot). ARGV: server id, now (s).
# The owning write, after the new server's player set took the name (a superset): checks the
# session and the player's bans again and moves the account. Returns -1 for a bad session,
# {-3, ban JSON} when a ban in force here names the player, else 1.
MOVE = Lua(bans.IN_FORCE + """
local sess = redis.call('GET', KEYS[1])
if not sess then return -1 end
local id = redis.call('HGET', KEYS[2], 'id')
if not id or cjson.decode(sess)['id'] ~= id then return -1 end
for _, raw in ipairs(redis.call('HVALS', KEYS[3])) do
  if string.sub(raw, 1, 1) ~= '-' then
    if applies(cjson.decode(raw), tonumber(ARGV[2]), ARGV[1]) then return {-3, raw} end
  end
end
redis.call('HSET', KEYS[2], 'server', ARGV[1], 'last_seen', ARGV[2])
return 1""")


@operation("presence.join", "POST", "/v1/servers/{id}/players", auth=SERVER, owner="id",
           aliases=("ONLINE",), replay=False,
           fields=(SERVER_PATH_ID,
                   Str("token", max_len=512, secret=True, fingerprinted=True,
                       doc="the player's session token"),
                   Str("ip", required=False, max_len=64,
                       doc="the player's address as the game server sees it: checked against "
                           "address bans, never stored")),
           example={"request": {"id": "k3x9q2w7m1ab", "token": "p.YWxpY2U.EXAMPLE-session-token",
                                "ip": "203.0.113.7"},
                    "response": {"player": {"id": "w2k7r9d1x5qa", "name": "alice"},
                                 "server": "k3x9q2w7m1ab", "online": True}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """A player comes online on the calling server, proven by their session token.

    The player logs in (``session.login``) from the game; the server passes their token here. A
    player is online on one server at a time: arriving here ends their presence anywhere else.
    The server must be live (a heartbeat within the last STATUS_TTL seconds). When the player has
    unread mail, the server then gets a mail notice for them. Calling again for a player already
    here changes nothing else, so a repeat with the same Idempotency-Key runs again rather than
    answering the first call's answer: a ban, an ended session or a lapsed server is judged
    now. The same key with another player's token is another request (422).
    A player banned here (a global ban or this server's own), by name or, when ``ip`` is given,
    by address, is refused; ``ip`` serves that check only and is never stored.

    Errors:
    - ``invalid_credentials`` (401): the player's token is wrong or expired.
    - ``banned`` (403): a ban in force here names the player or covers ``ip``; the message gives
      its reason and expiry.
    - ``invalid_input`` (400): a malformed ``ip``.
    - ``server_not_live`` (409): this server sent no heartbeat within STATUS_TTL seconds (send one,
      then retry); nothing changed.

    Internals:
    Ordered steps, each on one hash tag (docs/CLUSTER.md): read the session, the account, the unread
    count, the heartbeat and, with ``ip``, the ban index (the player and the address's
    networks) (checks); add the name to this server's player set (an
    index, a superset); check the session and the player's ban copies again and set the
    account's ``server`` and ``last_seen`` (the owning record); take the name out of the
    previous server's set; queue the pending-mail notice when there is unread mail, carrying
    the join time by Redis' clock. A crash between steps leaves at most a name in a player set
    whose account names another server, which nothing reads as presence. On one Redis the
    writes and the job are one MULTI/EXEC: two round trips.
    """
    server_id, token = args["id"], args["token"]
    lname = session_owner(token)
    if lname is None:
        raise InvalidCredentials("the player token is invalid or expired")
    addr = bans.address(args["ip"]) if args.get("ip") else None
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.get(keys.player_session(lname, sha256(token)))
    pipe.hmget(keys.player(lname), "id", "name", "server")
    pipe.zcard(keys.mailbox_unread(lname))
    pipe.zscore(keys.status_live(), server_id)
    pipe.execute_command("TIME")  # a cluster pipeline blocks time(); any node's clock
    if addr is not None:
        bans.queue_check(pipe, bans.check_fields(lname, addr))
    sess, (player_id, name, was_on), unread, beat, (secs, micros), *ban_index = pipe.execute()
    if addr is not None:
        found = bans.applying(ban_index[0], server_id, ctx.now(), addr)
        if found:
            raise bans.refusal(found[0])
    if not sess or not player_id or json.loads(sess).get("id") != player_id:
        raise InvalidCredentials("the player token is invalid or expired")
    if beat is None or beat < cutoff_ms(ctx):
        raise ServerNotLive(f"server {server_id} is not live: send a heartbeat first")
    joined_ms, was_here = int(secs) * 1000 + int(micros) // 1000, was_on == server_id
    steps = Ordered(ctx.redis)
    steps.pipe.sadd(keys.server_players(server_id), lname)
    MOVE(ctx.redis, [keys.player_session(lname, sha256(token)), keys.player(lname),
                     keys.player_bans(lname)],
         [server_id, int(ctx.now())], pipeline=steps.then().pipe)
    if was_on and not was_here:
        steps.then().pipe.srem(keys.server_players(was_on), lname)
    notice = bool(unread) and not was_here
    moved = queues.enqueue_after(
        steps, ctx.queue, (lambda pipe: queues.enqueue_pending_notice(
            ctx.queue, lname, server_id, joined_ms, pipeline=pipe)) if notice else None,
        ok=lambda replies: replies[1] == 1)[1]
    if moved != 1:  # the session ended or a ban came meanwhile: the set entry goes again
        if not was_here:
            ctx.redis.srem(keys.server_players(server_id), lname)
        if isinstance(moved, list):
            raise bans.refusal(json.loads(moved[1]))
        raise InvalidCredentials("the player token is invalid or expired")
    return {"player": {"id": player_id, "name": name}, "server": server_id, "online": True}
