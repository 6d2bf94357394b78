from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.redis_conn import Lua, batch
from shared.registry import ADMIN, PLAYER, operation
from shared.schema import PLAYER_PATH_NAME
from shared.storage import clans

# KEYS: acct, settings, sessions, mailbox, unread, mailseq, notified, fails, lock, boards,
# notice time.
# ARGV: lname, session key prefix, mail key prefix, then prefix/suffix pairs of a board's records
# key, a board's rank key and a server's player set (the script reads the boards and the server
# itself, so the whole delete is one round trip; those keys span hash tags: split on a Cluster).
DELETE = Lua("""
local server = redis.call('HGET', KEYS[1], 'server')
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for _, h in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do redis.call('DEL', ARGV[2] .. h) end
for _, m in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do redis.call('DEL', ARGV[3] .. m) end
for _, b in ipairs(redis.call('SMEMBERS', KEYS[10])) do
  local rec, rank = ARGV[4] .. b .. ARGV[5], ARGV[6] .. b .. ARGV[7]
  local raw = redis.call('HGET', rec, ARGV[1])
  if raw then
    redis.call('ZREM', rank, cjson.decode(raw)['member'])
    redis.call('HDEL', rec, ARGV[1])
  end
end
if server then redis.call('SREM', ARGV[8] .. server .. ARGV[9], ARGV[1]) end
for i = 1, 11 do redis.call('DEL', KEYS[i]) end
return 1""")


@operation("player.delete", "DELETE", "/v1/players/{name}", auth=PLAYER | ADMIN, owner="name",
           fields=(PLAYER_PATH_NAME,), audit="name", audit_by=ADMIN, account=("clan",),
           example={"request": {"name": "alice"}, "response": None})
def handler(ctx: Ctx, args: dict[str, Any]) -> None:
    """Delete a player and everything they own; the name becomes free.

    Removes the account, every session (their tokens stop working at once), their settings, their
    mailbox, their records on every leaderboard and their presence on a server. Mail they sent to
    others stays with the recipients. They leave their clan; a clan they own passes to the
    member who joined it earliest, or is deleted when no member is left. Bans on their name
    stay. The player may delete themself; the admin may delete anyone (that is in the audit
    log). Answers 204.

    Errors:
    - ``not_found`` (404): no player has this name.

    Internals:
    One script deletes it all atomically (it builds board and server keys itself: those span hash
    tags, so it must be split on a Redis Cluster), then, in the same pipeline, a script on the
    player's clan drops them from its member index (the account, the owning record, goes first;
    the index is read as a superset meanwhile). The clan field comes with the session check (a
    player deleting themself) or in one read first (the admin).
    """
    lname = args["name"].lower()
    ks = [keys.player(lname), keys.player_settings(lname), keys.player_sessions(lname),
          keys.mailbox(lname), keys.mailbox_unread(lname), keys.mail_seq(lname),
          keys.mail_notified(lname), keys.login_fails_name(lname), keys.login_lock_name(lname),
          keys.player_boards(lname), keys.mail_notice_at(lname)]
    argv = [lname, keys.player_session(lname, ""), keys.mail(lname, ""),
            *keys.around(keys.board_records(keys.HOLE)), *keys.around(keys.board_rank(keys.HOLE)),
            *keys.around(keys.server_players(keys.HOLE))]
    if ctx.caller.kind == "player":  # the clan field came with the session check
        ltag = ctx.caller.account.get("clan")
    else:
        ltag = ctx.redis.hget(keys.player(lname), "clan")
    steps: list[Any] = [(DELETE, ks, argv)]
    if ltag:  # then leave the clan: an owner's passes to the earliest member, or is deleted
        steps.append((clans.LEAVE, clans.group(ltag), [lname]))
    if not batch(ctx.redis, *steps)[0]:
        raise NotFound(f"no player named {args['name']}")
