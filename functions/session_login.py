from __future__ import annotations

import json
from typing import Any

from shared import keys, limits
from shared.auth import new_session_token, sha256, verify_password
from shared.errors import InvalidCredentials
from shared.redis_conn import Lua
from shared.registry import operation
from shared.schema import Str

# KEYS: the player's session set. ARGV: session key prefix. Drops hashes whose session expired.
PRUNE = Lua("""
for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. h) == 0 then redis.call('SREM', KEYS[1], h) end
end
return 0""")


@operation("session.login", "POST", "/v1/sessions", aliases=("LOGIN",), idempotent=False,
           fields=(Str("name", max_len=64), Str("password", max_len=1024, secret=True)))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Log a player in and return a session token (random, 256 bits, stored hashed).

    Stores the session (TTL SESSION_TTL) and last_seen. A wrong name or password raises
    invalid_credentials and counts toward the name and address locks (rate_limited, 429);
    a success resets the name's count and drops expired sessions from the player's session set.
    Two round trips (limits + account, then the session).
    """
    lname = args["name"].lower()
    ip_applies = ctx.caller.kind != "server"
    pipe = ctx.redis.pipeline(transaction=False)
    limits.begin_login(pipe, ctx, lname, ip_applies)
    pipe.hmget(keys.player(lname), "id", "name", "pw")
    wait, (player_id, name, pw) = pipe.execute()
    limits.raise_if_refused(wait)
    if not pw or not verify_password(pw, args["password"]):
        limits.login_failed(ctx, lname, ip_applies)
        raise InvalidCredentials("wrong name or password")
    token = new_session_token(lname)
    token_hash, now, ttl = sha256(token), int(ctx.now()), ctx.config.session_ttl
    tx = ctx.redis.pipeline()
    tx.set(keys.player_session(lname, token_hash), json.dumps({"id": player_id, "name": name}),
           ex=ttl)
    tx.sadd(keys.player_sessions(lname), token_hash)
    tx.eval(PRUNE.source, 1, keys.player_sessions(lname), keys.player_session(lname, ""))
    tx.hset(keys.player(lname), "last_seen", now)
    limits.login_succeeded(tx, ctx, lname, ip_applies)
    tx.execute()
    return {"token": token, "player": {"id": player_id, "name": name}, "expires_at": now + ttl}
