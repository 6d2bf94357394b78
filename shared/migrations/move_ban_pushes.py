"""Migration 3: move the unconfirmed ban pushes from ``{bans}:outbox`` to ``{bans}:pending``.

Releases before the ban webhooks kept the pushes not yet confirmed delivered in a zset at
``ssm:{bans}:outbox``; that name now holds the ``{bans}`` group's webhook event stream
(``keys.outbox("bans")``) and the pushes live at ``keys.ban_outbox()`` (``{bans}:pending``). A
zset left at the old name would make every ban's event write fail (WRONGTYPE). One script in
the ``{bans}`` group merges it into the new zset (keeping the earlier time of a push present in
both) and deletes it: atomic, so idempotent and resumable; nothing to do once it is a stream.
"""

from __future__ import annotations

from typing import Any

from shared import keys
from shared.redis_conn import Lua

_MOVE = Lua("""
if redis.call('TYPE', KEYS[1]).ok ~= 'zset' then return 0 end
local n = redis.call('ZCARD', KEYS[1])
redis.call('ZUNIONSTORE', KEYS[2], 2, KEYS[2], KEYS[1], 'AGGREGATE', 'MIN')
redis.call('DEL', KEYS[1])
return n
""")


def run(r: Any) -> int:
    return int(_MOVE(r, [keys.outbox("bans"), keys.ban_outbox()]))
