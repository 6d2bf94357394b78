"""The live-server index: a heartbeat is live for STATUS_TTL seconds, swept or not."""

from __future__ import annotations

import json
from typing import Any

from shared import keys
from shared.redis_conn import Lua

# KEYS: live zset, data hash; ARGV: oldest live heartbeat (ms). Returns [id, json, ...].
LIVE = Lua("""
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
local out = {}
if #ids == 0 then return out end
local data = redis.call('HMGET', KEYS[2], unpack(ids))
for i, id in ipairs(ids) do
  if data[i] then out[#out + 1] = id; out[#out + 1] = data[i] end
end
return out""")


def cutoff_ms(ctx: Any) -> int:
    """Heartbeats at or after this instant are live."""
    return ctx.now_ms() - ctx.config.status_ttl * 1000


def is_live(score: float | None, ctx: Any) -> bool:
    return score is not None and score >= cutoff_ms(ctx)


def live_servers(ctx: Any) -> list[dict[str, Any]]:
    """Every live server's last heartbeat, public or not. One round trip."""
    flat = LIVE(ctx.redis, [keys.status_live(), keys.status_data()], [cutoff_ms(ctx)])
    return [render(flat[i], json.loads(flat[i + 1])) for i in range(0, len(flat), 2)]


def render(server_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """A heartbeat as the status list shows it."""
    return {"id": server_id, **data, "player_count": len(data.get("players", []))}
