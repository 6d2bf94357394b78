from __future__ import annotations

from typing import Any

from shared import keys
from shared.auth import hash_password, verify_password
from shared.errors import InvalidCredentials
from shared.players import NAME, PASSWORD_MAX, PASSWORD_MIN
from shared.redis_conn import Lua
from shared.registry import PLAYER, operation
from shared.schema import Str

# KEYS: account hash, sessions set. ARGV: new pw, current token hash, session key prefix.
# Sets the password and ends every session but the current one. Returns sessions ended.
CHANGE = Lua("""
redis.call('HSET', KEYS[1], 'pw', ARGV[1])
local n = 0
for _, h in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if h ~= ARGV[2] then
    redis.call('DEL', ARGV[3] .. h)
    redis.call('SREM', KEYS[2], h)
    n = n + 1
  end
end
return n""")


@operation("player.password", "PUT", "/v1/players/{name}/password", auth=PLAYER, owner="name",
           account=("pw",),
           fields=(NAME, Str("old", max_len=1024, secret=True),
                   Str("new", min_len=PASSWORD_MIN, max_len=PASSWORD_MAX, secret=True)),
           example={"request": {"name": "alice", "old": "correct-horse-42",
                                "new": "battery-staple-7"},
                    "response": {"sessions_ended": 1}})
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Change the calling player's password; their other sessions end at once.

    The session that makes the call stays valid; every other session of the player is logged out.
    Returns how many sessions ended.

    Errors:
    - ``invalid_credentials`` (401): ``old`` is not the current password.

    Internals:
    The stored hash arrives with the session check (``account=("pw",)``), then one script sets the
    new scrypt hash and deletes the other sessions: two round trips. A wrong ``old`` does not count
    toward the login lockout (the caller already holds a valid session).
    """
    lname = ctx.caller.lname
    stored = ctx.caller.account.get("pw")
    if not stored or not verify_password(stored, args["old"]):
        raise InvalidCredentials("old: wrong password")
    pw = hash_password(args["new"], ctx.config.scrypt_log2_n)
    ended = CHANGE(ctx.redis, [keys.player(lname), keys.player_sessions(lname)],
                   [pw, ctx.caller.session, keys.player_session(lname, "")])
    return {"sessions_ended": int(ended)}
