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
           fields=(Str("name", max_len=64), Str("password", max_len=1024, secret=True)),
           example={"request": {"name": "alice", "password": "correct-horse-42"},
                    "response": {"token": "p.YWxpY2U.EXAMPLE-session-token",
                                 "player": {"id": "w2k7r9d1x5qa", "name": "alice"},
                                 "expires_at": 1719592000}})
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Log a player in: returns a session token to send as their credential.

    The token stays valid for SESSION_TTL seconds, until the player logs out, changes their
    password elsewhere, or is deleted. A player may hold several sessions (one per device). The
    name may be given in any case. Repeated wrong passwords lock the name for a while, and
    repeated failures from one address lock that address.

    Errors:
    - ``invalid_credentials`` (401): wrong name or password (the answer does not say which).
    - ``rate_limited`` (429): the name or the address is locked after failed logins; retry after
      ``Retry-After``.

    Internals:
    Stores the session (TTL SESSION_TTL) and last_seen; a failure counts toward the name and address
    locks, a success resets the name's count and prunes expired sessions. Two round trips (limits +
    account, then the session).
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
