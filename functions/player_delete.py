from __future__ import annotations

from typing import Any

from shared import keys, players
from shared.errors import NotFound
from shared.redis_conn import Lua
from shared.registry import ADMIN, PLAYER, operation

# KEYS: acct, settings, sessions, mailbox, unread, mailseq, notified, fails, lock, boards,
# then (records, rank) per board, then the presence set when online.
# ARGV: lname, session key prefix, mail key prefix, board count, 1 when a presence set is given.
DELETE = Lua("""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for _, h in ipairs(redis.call('SMEMBERS', KEYS[3])) do redis.call('DEL', ARGV[2] .. h) end
for _, m in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do redis.call('DEL', ARGV[3] .. m) end
local nb = tonumber(ARGV[4])
for i = 0, nb - 1 do
  local rec, rank = KEYS[11 + 2 * i], KEYS[12 + 2 * i]
  local raw = redis.call('HGET', rec, ARGV[1])
  if raw then
    redis.call('ZREM', rank, cjson.decode(raw)['member'])
    redis.call('HDEL', rec, ARGV[1])
  end
end
if ARGV[5] == '1' then redis.call('SREM', KEYS[11 + 2 * nb], ARGV[1]) end
for i = 1, 10 do redis.call('DEL', KEYS[i]) end
return 1""")


@operation("player.delete", "DELETE", "/v1/players/{name}", auth=PLAYER | ADMIN, owner="name",
           fields=(players.NAME,))
def handler(ctx: Any, args: dict[str, Any]) -> None:
    """Delete a player and all their data (204); the name is free to register again.

    Removes the account, settings, every session (tokens refused at once), the mailbox and its
    mails, their record on every leaderboard, their presence on a server, and login-failure
    state. Mail they sent to others stays with the recipients. The player themself or the admin
    may call it; 404 not_found for an unknown name. Two round trips: a pipelined read, then one
    script that deletes atomically.
    """
    lname = args["name"].lower()
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.hget(keys.player(lname), "server")
    pipe.smembers(keys.player_boards(lname))
    server, boards = pipe.execute()
    boards = sorted(boards)
    ks = [keys.player(lname), keys.player_settings(lname), keys.player_sessions(lname),
          keys.mailbox(lname), keys.mailbox_unread(lname), keys.mail_seq(lname),
          keys.mail_notified(lname), keys.login_fails_name(lname), keys.login_lock_name(lname),
          keys.player_boards(lname)]
    for board in boards:
        ks += [keys.board_records(board), keys.board_rank(board)]
    if server:
        ks.append(keys.server_players(server))
    argv = [lname, keys.player_session(lname, ""), keys.mail(lname, ""), len(boards),
            1 if server else 0]
    if not DELETE(ctx.redis, ks, argv):
        raise NotFound(f"no player named {args['name']}")
