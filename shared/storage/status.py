"""The live-server index: a heartbeat is live for STATUS_TTL seconds, swept or not.

The worker's sweep (``shared.jobs.sweep_status``) expires lapsed servers with :data:`SWEEP`;
:func:`sweep_due` decides, once per period fleet-wide, whether a sweep is needed.
"""

from __future__ import annotations

import json
from typing import Any

from shared import events, keys
from shared.redis_conn import Lua
from shared.storage import messages

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


# KEYS: live index, sweep lock (both {status}). ARGV: STATUS_TTL, period (ms), owner.
# Takes the period's sweep lock only when some server's heartbeat has lapsed; returns 1 when it
# did (the caller queues the sweep). With nothing to expire it reads one zset entry and writes
# nothing, so an idle fleet's schedule costs no job and no write.
SWEEP_DUE = Lua("""
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cutoff = now_ms - tonumber(ARGV[1]) * 1000
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff, 'LIMIT', 0, 1)
if #lapsed == 0 then return 0 end
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[2]) then return 1 end
return 0""")


def sweep_due(r: Any, owner: str, status_ttl: int, period_ms: int) -> bool:
    """Whether this caller should queue the sweep now: a heartbeat has lapsed and it won the
    period's lock (one sweep per period fleet-wide). One round trip."""
    return SWEEP_DUE(r, [keys.status_live(), keys.status_sweep_lock()],
                     [status_ttl, period_ms, owner]) == 1


# KEYS 3 status data, 4 status outbox, 5..6 (unused), 7 live index
# ARGV 6 STATUS_TTL, 7 batch size, 8/9 account key around the name, 10/11 players-set key
# around the server id. Returns {expired server ids..., notices sent}. Each expired server is a
# server.offline webhook event (shared/events.py).
SWEEP = Lua(messages.JOB_PRELUDE + events.LUA + """
local cutoff = now_ms - tonumber(ARGV[6]) * 1000
local dead = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', '(' .. cutoff, 'LIMIT', 0, ARGV[7])
local gone = {}
for _, id in ipairs(dead) do
  local beat = math.floor(tonumber(redis.call('ZSCORE', KEYS[7], id)) / 1000)
  redis.call('ZREM', KEYS[7], id)
  local raw = redis.call('HGET', KEYS[3], id)
  redis.call('HDEL', KEYS[3], id)
  local ok, d = pcall(cjson.decode, raw or '')
  local name = (ok and type(d) == 'table' and type(d.name) == 'string') and d.name or id
  local set = ARGV[10] .. id .. ARGV[11]
  for _, lname in ipairs(redis.call('SMEMBERS', set)) do
    local acct = ARGV[8] .. lname .. ARGV[9]
    if redis.call('HGET', acct, 'server') == id then
      redis.call('HDEL', acct, 'server')
      local seen = tonumber(redis.call('HGET', acct, 'last_seen') or 0)
      if beat > seen then redis.call('HSET', acct, 'last_seen', beat) end
    end
  end
  redis.call('DEL', set)
  gone[#gone + 1] = {id, name}
  emit(KEYS[4], 'server.offline', cjson.encode({id = id, name = name, last_heartbeat = beat}))
end
local sent = 0
if #gone > 0 then
  for _, to in ipairs(redis.call('ZRANGEBYSCORE', KEYS[7], cutoff, '+inf')) do
    for _, g in ipairs(gone) do
      if send(to, 'server_offline', {type = 'server_offline', from = 'ssm', to = to,
          server = g[1], name = g[2], body = g[2] .. ' went offline', at = now_ms / 1000})
      then sent = sent + 1 end
    end
  end
end
local out = {}
for _, g in ipairs(gone) do out[#out + 1] = g[1] end
out[#out + 1] = sent
return out""")


def sweep(r: Any, config: Any, batch: int) -> list:
    """Expire up to ``batch`` lapsed servers (see :data:`SWEEP`); returns their ids followed by
    the number of notices sent. One round trip."""
    return SWEEP(r, [*messages.job_keys(), keys.status_data(), keys.outbox("status"), "", "",
                     keys.status_live()],
                 [*messages.job_args(config), config.status_ttl, batch,
                  *keys.around(keys.player(keys.HOLE)),
                  *keys.around(keys.server_players(keys.HOLE))])
