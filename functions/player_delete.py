from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.redis_conn import Lua, Ordered
from shared.registry import ADMIN, PLAYER, operation
from shared.schema import PLAYER_PATH_NAME
from shared.storage import clans, records, revocations

# KEYS: the player's own keys (one slot), the account first. ARGV: session key prefix, mail key
# prefix. The last step: deletes the sessions, the mails and every key in KEYS. Returns 0 when
# there is no account.
DELETE = Lua("""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for _, h in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do redis.call('DEL', ARGV[1] .. h) end
for _, m in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do redis.call('DEL', ARGV[2] .. m) end
for i = 1, #KEYS do redis.call('DEL', KEYS[i]) end
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
    Ordered steps, each on one hash tag (docs/CLUSTER.md): read the account (its server and clan)
    and the player's board set; then remove their record from each board, their name from their
    server's player set and their clan (an owner's clan passes to the earliest member, or is
    deleted); last, one script deletes the player's own keys, the account among them. A crash
    in between leaves a player who still exists with fewer records; a retry finishes. On one
    Redis the writes are one MULTI/EXEC. Last, one entry in the revocations stream ends the
    relay connections that used their sessions.
    """
    lname = args["name"].lower()
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.hmget(keys.player(lname), "id", "server", "clan")
    pipe.smembers(keys.player_boards(lname))
    (found, server, ltag), boards = pipe.execute()
    if not found:
        raise NotFound(f"no player named {args['name']}")
    steps = Ordered(ctx.redis)  # records, presence and clan first; the player's keys last
    now = ctx.now()
    for board in sorted(boards):
        records.REMOVE(ctx.redis, records.board_keys(board, now), [lname], pipeline=steps.pipe)
    if server:
        steps.pipe.srem(keys.server_players(server), lname)
    if ltag:  # leave the clan: an owner's passes to the earliest member, or is deleted
        clans.LEAVE(ctx.redis, clans.group(ltag), [lname], pipeline=steps.pipe)
    DELETE(ctx.redis, [keys.player(lname), keys.player_settings(lname),
                       keys.player_sessions(lname), keys.mailbox(lname),
                       keys.mailbox_unread(lname), keys.mail_seq(lname),
                       keys.mail_notified(lname), keys.login_fails_name(lname),
                       keys.login_busy_name(lname), keys.login_lock_name(lname),
                       keys.player_boards(lname), keys.mail_notice_at(lname),
                       keys.mail_blocked(lname)],
           [keys.player_session(lname, ""), keys.mail(lname, "")], pipeline=steps.then().pipe)
    revocations.announce(steps.then().pipe, revocations.PLAYER, lname, "deleted")
    if not steps.execute()[-2]:
        raise NotFound(f"no player named {args['name']}")
