from __future__ import annotations

from typing import Any

from shared import keys
from shared.auth import hash_password, verify_password
from shared.dispatch import Ctx
from shared.errors import InvalidCredentials
from shared.redis_conn import Lua
from shared.registry import PLAYER, operation
from shared.schema import PASSWORD_MAX, PASSWORD_MIN, PLAYER_PATH_NAME, Str
from shared.storage import limits, revocations

# KEYS: account hash, session index. ARGV: new pw, current token hash, session key prefix.
# Sets the password and ends every session but the current one. Returns sessions ended.
CHANGE = Lua("""
redis.call('HSET', KEYS[1], 'pw', ARGV[1])
local n = 0
for _, h in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if h ~= ARGV[2] then
    redis.call('DEL', ARGV[3] .. h)
    redis.call('ZREM', KEYS[2], h)
    n = n + 1
  end
end
return n""")


@operation("player.password", "PUT", "/v1/players/{name}/password", auth=PLAYER, owner="name",
           account=("pw",),
           fields=(PLAYER_PATH_NAME, Str("old", max_len=1024, secret=True),
                   Str("new", min_len=PASSWORD_MIN, max_len=PASSWORD_MAX, secret=True)),
           example={"request": {"name": "alice", "old": "correct-horse-42",
                                "new": "battery-staple-7"},
                    "response": {"sessions_ended": 1}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Change the calling player's password; their other sessions end at once.

    The session that makes the call stays valid; every other session of the player is logged out.
    Returns how many sessions ended. A wrong ``old`` counts as a failed login for the name, so a
    stolen token cannot guess the password past the lockout.

    Errors:
    - ``invalid_credentials`` (401): ``old`` is not the current password.
    - ``rate_limited`` (429): the name or the address is locked after failed logins; retry after
      ``Retry-After``.

    Internals:
    Three round trips: the stored hash arrives with the session check (``account=("pw",)``),
    then the attempt is counted (before the password check, so parallel guesses cannot outrun
    the lock), then one MULTI writes; when sessions ended, one entry in the revocations stream
    ends the relay connections that used them.
    """
    lname = ctx.caller.lname
    guard = limits.LoginGuard(ctx, lname)
    pipe = ctx.redis.pipeline(transaction=False)
    guard.begin(pipe)
    guard.admit(pipe.execute())
    stored = ctx.caller.account.get("pw")
    if not stored or not verify_password(stored, args["old"]):
        guard.failed(ctx.redis)
        raise InvalidCredentials("old: wrong password")
    pw = hash_password(args["new"], ctx.config.scrypt_log2_n)
    pipe = ctx.redis.pipeline(transaction=False)
    CHANGE(ctx.redis, [keys.player(lname), keys.player_sessions(lname)],
           [pw, ctx.caller.session, keys.player_session(lname, "")], pipeline=pipe)
    guard.succeeded(pipe)
    ended = pipe.execute()[0]
    if ended:
        revocations.announce(ctx.redis, revocations.PLAYER, lname, "password")
    return {"sessions_ended": int(ended)}
