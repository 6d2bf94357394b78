"""A player's sessions as the player sees them (``session.list``, ``session.end``,
``session.end_others``) and the web's "last used" mark.

A session is ``{p:<name>}:sess:<sha256 of the token>`` (JSON ``{id, name, created, used}``, TTL
SESSION_TTL) listed in the index ``{p:<name>}:sessidx`` (token hash -> expiry ms), both built in
``shared/keys.py`` and written by ``session.login``. A session is shown by an id: the first
``ID_LEN`` hex digits of its token hash, which names it without being a credential (the hash of
a token cannot log in, and the token cannot be recovered from it). Every script here stays in
the player's group and walks the index, which the login caps at SESSIONS_PER_PLAYER_MAX.
"""

from __future__ import annotations

import json
from typing import Any

from shared import keys
from shared.redis_conn import Lua, Ordered
from shared.storage import revocations

ID_LEN = 16
SESSION_ID = r"[0-9a-f]{16}"
# The web refreshes a session's "used" mark at most this often (seconds): a page load costs no
# write in between.
TOUCH_EVERY = 60

# KEYS: the session index. ARGV: session key prefix.
# Returns {hash, expiry ms, JSON, ...} for each live session (an expired one has no key any
# more). Read only: it runs before the credential is proven, as a prefetch.
LIST = Lua("""
local out = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local res = {}
for i = 1, #out, 2 do
  local raw = redis.call('GET', ARGV[1] .. out[i])
  if raw then
    res[#res + 1] = out[i]; res[#res + 1] = out[i + 1]; res[#res + 1] = raw
  end
end
return res""")

# KEYS: the session index. ARGV: session key prefix, a session id (hash prefix), the current
# session's hash. Ends the sessions whose hash starts with the id, or (id '') every session but
# the current one. Returns how many ended.
END = Lua("""
local n = 0
for _, h in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local hit
  if ARGV[2] == '' then hit = h ~= ARGV[3] else hit = string.sub(h, 1, #ARGV[2]) == ARGV[2] end
  if hit then
    redis.call('DEL', ARGV[1] .. h)
    redis.call('ZREM', KEYS[1], h)
    n = n + 1
  end
end
return n""")

# KEYS: one session. ARGV: now (unix seconds). Marks it used; keeps its TTL; nothing when it has
# ended meanwhile.
TOUCH = Lua("""
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local data = cjson.decode(raw)
data['used'] = tonumber(ARGV[1])
redis.call('SET', KEYS[1], cjson.encode(data), 'KEEPTTL')
return 1""")


def session_id(token_hash: str) -> str:
    return token_hash[:ID_LEN]


def list_reads(pipe: Any, args: dict[str, Any], lname: str) -> None:
    """``session.list``'s read (its ``prefetch``)."""
    LIST(pipe, [keys.player_sessions(lname)], [keys.player_session(lname, "")], pipeline=pipe)


def render(flat: list[Any], current: str, ttl: int) -> list[dict[str, Any]]:
    """``[{id, created, last_used, expires_at, current}]`` from :data:`LIST`'s reply, newest
    first. A session made before ``created`` was stored shows its expiry minus the TTL."""
    out = []
    for i in range(0, len(flat), 3):
        token_hash, expiry, data = flat[i], int(float(flat[i + 1])), json.loads(flat[i + 2])
        expires = expiry // 1000
        created = int(data.get("created") or expires - ttl)
        out.append({"id": session_id(token_hash), "created": created,
                    "last_used": int(data.get("used") or created), "expires_at": expires,
                    "current": token_hash == current})
    out.sort(key=lambda s: (s["created"], s["id"]), reverse=True)
    return out


def end(r: Any, lname: str, sid: str, current: str) -> int:
    """End the player's session ``sid`` (``""``: every one but ``current``); how many ended.
    Then an entry in the revocations stream ends the relay connections that used them (one
    MULTI/EXEC on one Redis, two steps on a cluster: the entry must follow the change)."""
    steps = Ordered(r)
    END(r, [keys.player_sessions(lname)], [keys.player_session(lname, ""), sid, current],
        pipeline=steps.pipe)
    revocations.announce(steps.then().pipe, revocations.PLAYER, lname, "logout")
    return int(steps.execute()[0])


def touch(r: Any, lname: str, token_hash: str, used: float, now: float) -> None:
    """Mark a session used, when its mark is older than TOUCH_EVERY (else nothing, no round
    trip)."""
    if now - used >= TOUCH_EVERY:
        TOUCH(r, [keys.player_session(lname, token_hash)], [int(now)])
