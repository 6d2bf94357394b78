"""Migration 2: put the sessions of the first releases into today's session index.

The first releases listed a player's sessions in a set at ``ssm:{p:<name>}:sessions``; today's
code keeps them in a zset at ``keys.player_sessions()`` (``:sessidx``, token hash -> expiry in
unix ms) and ends sessions through it (a password change, the session cap, player delete). An
old session still logs in (its ``:sess:<hash>`` key is unchanged), but it would outlive a
password change. One script per player, in that player's ``{p:<name>}`` group, adds each old
session still alive to the zset with its expiry (now + its remaining TTL; ``NX``: an entry
already there keeps its score) and deletes the old set: atomic, so idempotent and resumable.
"""

from __future__ import annotations

import time
from typing import Any

from shared import keys
from shared.redis_conn import Lua, primaries

_FOLD = Lua("""
if redis.call('TYPE', KEYS[1]).ok ~= 'set' then return 0 end
local n = 0
for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local ttl = redis.call('PTTL', ARGV[1] .. h)
  if ttl ~= -2 then
    redis.call('ZADD', KEYS[2], 'NX', tonumber(ARGV[2]) + math.max(ttl, 0), h)
    n = n + 1
  end
end
redis.call('DEL', KEYS[1])
return n
""")


def run(r: Any) -> int:
    before, after = keys.around(keys.legacy_player_sessions(keys.HOLE))
    folded = 0
    for node in primaries(r):
        for key in node.scan_iter(match=f"{before}*{after}", count=1000):
            key = key.decode() if isinstance(key, bytes) else key
            lname = key[len(before):-len(after)]
            if not lname or "}" in lname:
                continue
            folded += int(_FOLD(r, [key, keys.player_sessions(lname)],
                                [keys.player_session(lname, ""), int(time.time() * 1000)]))
    return folded
