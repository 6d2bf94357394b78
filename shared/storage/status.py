"""The live-server index: a heartbeat is live for STATUS_TTL seconds, swept or not.

The worker's sweep (``shared.jobs.sweep_status``) expires lapsed servers with :data:`SWEEP`;
:func:`sweep_due` decides, once per period fleet-wide, whether a sweep is needed.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from shared import events, keys, lua
from shared.config import Config
from shared.redis_conn import Lua
from shared.storage import messages

if TYPE_CHECKING:  # annotations only (dispatch imports storage)
    from shared.dispatch import Ctx

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


def cutoff_ms(ctx: Ctx) -> int:
    """Heartbeats at or after this instant are live."""
    return ctx.now_ms() - ctx.config.status_ttl * 1000


def is_live(score: float | None, ctx: Ctx) -> bool:
    return score is not None and score >= cutoff_ms(ctx)


def live_servers(ctx: Ctx) -> list[dict[str, Any]]:
    """Every live server's last heartbeat, public or not. One round trip."""
    flat = LIVE(ctx.redis, [keys.status_live(), keys.status_data()], [cutoff_ms(ctx)])
    return [render(flat[i], json.loads(flat[i + 1])) for i in range(0, len(flat), 2)]


# KEYS: live zset, data hash, list version; ARGV: oldest live heartbeat (ms), the version the
# caller holds ('' for none), '1' for the version alone. Returns [version] when it is still the
# caller's or only the version is asked, else [version, id, json, ...]: the version and the
# list read together, so a list is never cached under a version it does not match.
LIVE_VERSIONED = Lua("""
local v = redis.call('GET', KEYS[3]) or '0'
if v == ARGV[2] or ARGV[3] == '1' then return {v} end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
local out = {v}
if #ids == 0 then return out end
local data = redis.call('HMGET', KEYS[2], unpack(ids))
for i, id in ipairs(ids) do
  if data[i] then out[#out + 1] = id; out[#out + 1] = data[i] end
end
return out""")


def public_if_changed(r: Any, cutoff: int, known: str | None,
                      version_only: bool = False) -> tuple[str, list[dict[str, Any]] | None]:
    """The public list's version and, unless it is still ``known`` or ``version_only``, every
    live public server (unsorted): ``(version, servers or None)``. One round trip."""
    flat = LIVE_VERSIONED(r, [keys.status_live(), keys.status_data(), keys.status_version()],
                          [cutoff, known or "", "1" if version_only else ""])
    version = flat[0].decode() if isinstance(flat[0], bytes) else str(flat[0])
    if len(flat) == 1 and (version == known or version_only):
        return version, None
    servers = (render(flat[i], json.loads(flat[i + 1])) for i in range(1, len(flat), 2))
    return version, [s for s in servers if s.get("public")]


def render(server_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """A heartbeat as the status list shows it."""
    return {"id": server_id, **data, "player_count": len(data.get("players", []))}


# KEYS: live index, sweep lock (both {status}). ARGV: STATUS_TTL, period (ms), owner.
# Takes the period's sweep lock only when some server's heartbeat has lapsed; returns 1 when it
# did (the caller queues the sweep). With nothing to expire it reads one zset entry and writes
# nothing, so an idle fleet's schedule costs no job and no write.
SWEEP_DUE = Lua(lua.DUE_THEN_LOCK + """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cutoff = now_ms - tonumber(ARGV[1]) * 1000
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff, 'LIMIT', 0, 1)
return due_then_lock(#lapsed > 0, KEYS[2], ARGV[2], ARGV[3])""")


def sweep_due(r: Any, owner: str, status_ttl: int, period_ms: int) -> bool:
    """Whether this caller should queue the sweep now: a heartbeat has lapsed and it won the
    period's lock (one sweep per period fleet-wide). One round trip."""
    return SWEEP_DUE(r, [keys.status_live(), keys.status_sweep_lock()],
                     [status_ttl, period_ms, owner]) == 1


# The sweep, in ordered steps, each on one hash tag (docs/CLUSTER.md), so a crash or a second sweep
# at any point finishes the work and announces each expiry once:
#   1. {status}: the lapsed servers, their last heartbeat and name (a read);
#   2. each server's slot: who it had online; each player's slot (CLEAR): the account's
#      ``server`` is cleared only if it still names that server, ``last_seen`` becomes the last
#      heartbeat; then the server's player set goes;
#   3. {msg} (ANNOUNCE): ``server_offline`` to every live server, with a marker per (server,
#      heartbeat) in the same script: announced once whichever sweep gets there;
#   4. {status} (FORGET): the live entry and the heartbeat data go, only if the heartbeat is
#      still the lapsed one (a server that came back stays), with the server.offline webhook
#      event in the same script. The owning record goes last.

# KEYS: account. ARGV: server id, last heartbeat (s).
CLEAR = Lua("""
if redis.call('HGET', KEYS[1], 'server') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'server')
  local seen = tonumber(redis.call('HGET', KEYS[1], 'last_seen') or 0)
  if tonumber(ARGV[2]) > seen then redis.call('HSET', KEYS[1], 'last_seen', ARGV[2]) end
end
return 0""")

# KEYS 1 servers set, 2 id log, 3 the expiry's marker. ARGV 1..5 delivery settings, 6 server
# id, 7 its name, 8 marker TTL (ms), then the live servers to tell. Returns notices sent.
ANNOUNCE = Lua(messages.JOB_PRELUDE + """
if delivered(KEYS[3]) then return 0 end
local sent = 0
for i = 9, #ARGV do
  if send(ARGV[i], 'server_offline', {type = 'server_offline', from = 'ssm', to = ARGV[i],
      server = ARGV[6], name = ARGV[7], body = ARGV[7] .. ' went offline', at = now_ms / 1000})
  then sent = sent + 1 end
end
mark(KEYS[3], '1', ARGV[8])
return sent""")

# KEYS: live index, status data, status outbox, list version. ARGV: server id, the lapsed
# heartbeat, the server's name. Returns 1 if removed; the removal is a server.offline webhook
# event (shared/events.py) and a new version of the list, written in the same script.
FORGET = Lua(events.LUA + """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('INCR', KEYS[4])
emit(KEYS[3], 'server.offline', cjson.encode({id = ARGV[1], name = ARGV[3],
     last_heartbeat = math.floor(tonumber(ARGV[2]) / 1000)}))
return 1""")


def sweep(r: Any, config: Config, batch: int) -> list:
    """Expire up to ``batch`` lapsed servers (the steps above); returns their ids followed by
    the number of notices sent. Five round trips."""
    now_ms = int(time.time() * 1000)
    cutoff = now_ms - config.status_ttl * 1000
    pipe = r.pipeline(transaction=False)
    # scores as Redis writes them: FORGET compares them as text
    pipe.zrangebyscore(keys.status_live(), "-inf", f"({cutoff}", start=0, num=batch,
                       withscores=True, score_cast_func=_text)
    pipe.zrangebyscore(keys.status_live(), cutoff, "+inf")
    dead, live = pipe.execute()
    if not dead:
        return [0]
    pipe = r.pipeline(transaction=False)
    pipe.hmget(keys.status_data(), [sid for sid, _ in dead])
    for sid, _ in dead:
        pipe.smembers(keys.server_players(sid))
    names, *online = pipe.execute()
    pipe = r.pipeline(transaction=False)
    for (sid, beat), players in zip(dead, online, strict=True):
        for lname in players:
            CLEAR(r, [keys.player(lname)], [sid, int(float(beat)) // 1000], pipeline=pipe)
    pipe.execute()
    pipe = r.pipeline(transaction=False)
    for sid, _ in dead:
        pipe.delete(keys.server_players(sid))
    for (sid, beat), raw in zip(dead, names, strict=True):
        ANNOUNCE(r, [*messages.job_keys(), keys.notice_sent(f"offline:{sid}:{beat}")],
                 [*messages.job_args(config), sid, _name(raw, sid), messages.MARKER_TTL_MS,
                  *live], pipeline=pipe)
    sent = sum(pipe.execute()[len(dead):])
    pipe = r.pipeline(transaction=False)
    for (sid, beat), raw in zip(dead, names, strict=True):
        FORGET(r, [keys.status_live(), keys.status_data(), keys.outbox("status"),
                   keys.status_version()],
               [sid, beat, _name(raw, sid)], pipeline=pipe)
    gone = [sid for (sid, _), done in zip(dead, pipe.execute(), strict=True) if done]
    return [*gone, sent]


def _text(score: Any) -> str:
    return score.decode() if isinstance(score, bytes) else str(score)


def _name(raw: str | None, server_id: str) -> str:
    try:
        data = json.loads(raw or "")
    except ValueError:
        return server_id
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else server_id
