from __future__ import annotations

import json
from typing import Any

from shared import keys
from shared.auth import new_session_token, sha256, verify_password
from shared.dispatch import Ctx
from shared.errors import InvalidCredentials
from shared.redis_conn import Lua
from shared.registry import operation
from shared.schema import PLAYER_NAME, Str
from shared.storage import limits, revocations

# KEYS: the player's session index, the new session's key.
# ARGV: token hash, session JSON, TTL s, now ms, SESSIONS_PER_PLAYER_MAX, session key prefix.
# Stores the session; drops expired ones from the index, then the oldest beyond the cap (their
# keys deleted: revoked at once). Every step is bounded by the cap, whatever the history.
ADD_SESSION = Lua("""
local ttl_ms, now = tonumber(ARGV[3]) * 1000, tonumber(ARGV[4])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl_ms)
for _, h in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('DEL', ARGV[6] .. h)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local expiry = now + ttl_ms
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] and tonumber(last[2]) >= expiry then expiry = tonumber(last[2]) + 1 end
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[5])
if over > 0 then
  for _, h in ipairs(redis.call('ZRANGE', KEYS[1], 0, over - 1)) do
    redis.call('DEL', ARGV[6] .. h)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
end
redis.call('PEXPIRE', KEYS[1], math.max(redis.call('PTTL', KEYS[1]), ttl_ms))
return over""")


@operation("session.login", "POST", "/v1/sessions", aliases=("LOGIN",), secret_out=("token",),
           fields=(Str("name", pattern=PLAYER_NAME, doc="player name (case-insensitive)"),
                   Str("password", max_len=1024, secret=True)),
           example={"request": {"name": "alice", "password": "correct-horse-42"},
                    "response": {"token": "p.YWxpY2U.EXAMPLE-session-token",
                                 "player": {"id": "w2k7r9d1x5qa", "name": "alice"},
                                 "expires_at": 1719592000}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Log a player in: returns a session token to send as their credential.

    The token stays valid for SESSION_TTL seconds, until the player logs out, changes their
    password elsewhere, or is deleted. A player keeps at most SESSIONS_PER_PLAYER_MAX sessions
    (one per device); a new one beyond that logs out the oldest. The name may be given in any
    case. Repeated wrong passwords lock the name for a while (through a game server: for logins
    through that server only), and repeated failures from one address lock that address. A
    game server's key gets at most LOGIN_FAILS_PER_SERVER_MINUTE failed logins a minute, over
    all names; then its logins are refused until the minute is over. A
    repeat with the same Idempotency-Key answers the first login's ``{player, expires_at}``
    without the token.

    Errors:
    - ``invalid_input`` (400): ``name`` is not a valid player name.
    - ``invalid_credentials`` (401): wrong name or password (the answer does not say which).
    - ``rate_limited`` (429): the name, the address or the calling server's key is locked after
      failed logins; retry after ``Retry-After``.

    Internals:
    Stores the session (TTL SESSION_TTL) and last_seen, evicting the oldest beyond the cap; a
    failure counts toward the name and address locks, a success resets the name's count. Two
    round trips (limits + account, then the session), and one more when sessions were evicted:
    an entry in the revocations stream ends the relay connections that used them.
    """
    lname = args["name"].lower()
    guard = limits.LoginGuard(ctx, lname)
    pipe = ctx.redis.pipeline(transaction=False)
    n = guard.begin(pipe)
    pipe.hmget(keys.player(lname), "id", "name", "pw")
    *replies, (player_id, name, pw) = pipe.execute()
    guard.admit(replies[:n])
    if not pw or not verify_password(pw, args["password"]):
        guard.failed(ctx.redis)
        raise InvalidCredentials("wrong name or password")
    token = new_session_token(lname)
    token_hash, now, ttl = sha256(token), ctx.now(), ctx.config.session_ttl
    # the player's keys, then the address's limit (a slot of its own on a cluster): not one
    # transaction; each step stands on its own (a crash leaves at most a reservation to expire)
    # created and used: for session.list (the web refreshes used, shared/storage/sessions.py)
    session = {"id": player_id, "name": name, "created": int(now), "used": int(now)}
    pipe = ctx.redis.pipeline(transaction=False)
    ADD_SESSION(ctx.redis, [keys.player_sessions(lname), keys.player_session(lname, token_hash)],
                [token_hash, json.dumps(session), ttl, int(now * 1000),
                 ctx.config.sessions_per_player_max, keys.player_session(lname, "")],
                pipeline=pipe)
    pipe.hset(keys.player(lname), "last_seen", int(now))
    guard.succeeded(pipe)
    if pipe.execute()[0] > 0:  # the oldest sessions beyond the cap ended: tell the relays
        revocations.announce(ctx.redis, revocations.PLAYER, lname, "evicted")
    return {"token": token, "player": {"id": player_id, "name": name},
            "expires_at": int(now) + ttl}
