"""Server inboxes: every server reads one Redis stream holding all that is addressed to it.

A send to a server id, to ``*`` (every registered server but the sender) or to ``#channel``
(every member but the sender) appends one entry to each target inbox, in one script (all
messaging keys share the ``{msg}`` tag). Every copy carries the same stream id, taken from a
small id log, so a message has one id everywhere. Entry fields: ``e`` (event: message | mail |
server_offline) and ``d`` (JSON payload). ``message.read`` and relay pushes read these streams.

Everything written to an inbox must go through :func:`deliver` (workers included): an inbox only
accepts ids from the id log, so a direct ``XADD *`` could make a later delivery fail.

A send by a server (``budget=True``) first pays its recipients out of that server's send budget
(MESSAGE_SEND_BUDGET a minute, bucket of MESSAGE_SEND_BURST), in the same script, so a refused
send writes nothing. Payloads are stored as UTF-8 JSON.

Retention (SPEC: "at least the last 10,000 or 7 days"): an entry is dropped only when it is
older than MESSAGE_KEEP_SECONDS *and* not among the newest MESSAGE_KEEP_COUNT of its inbox; an
inbox never holds more than about MESSAGE_HARD_CAP entries whatever their age.
"""

from __future__ import annotations

import contextlib
import json
import math
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shared import keys, metrics
from shared.config import Config
from shared.errors import NotFound, RateLimited
from shared.redis_conn import Lua

TRIM_STEP = 100  # at most this many aged entries are dropped per delivery and inbox
KIB = 1024

# Types only the backend writes (docs/API.md): message.send refuses them and any type starting
# with ``system``. Types are lowercase by their pattern, so no other spelling exists.
RESERVED_TYPES = frozenset({"mail", "server_offline", "ban", "unban"})
RESERVED_PREFIX = "system"

# KEYS: servers set, id log, channel set (unused unless mode is set), send budget (optional)
# ARGV: mode (server|all|set), target server id, sender, event, data, hard cap, inbox prefix,
#       keep count, keep seconds, trim step; with a budget also 11 refill (units a minute),
#       12 burst (units), 13 units per recipient.
# Returns {id, copies}; false for an unknown server id; a number (ms to wait) when the budget
# is short, before anything is written. A budget holds units x 60,000 so that it refills by
# exactly ARGV[11] every millisecond, in integers.
DELIVER = Lua("""
local mode, target, sender = ARGV[1], ARGV[2], ARGV[3]
local keep, step = tonumber(ARGV[8]), tonumber(ARGV[10])
if mode == 'server' and redis.call('SISMEMBER', KEYS[1], target) == 0 then return false end
local now = redis.call('TIME')
if ARGV[11] then
  local n = 1
  if mode == 'all' then
    n = redis.call('SCARD', KEYS[1]) - redis.call('SISMEMBER', KEYS[1], sender)
  elseif mode == 'set' then
    n = redis.call('SINTERCARD', 2, KEYS[3], KEYS[1])
    if redis.call('SISMEMBER', KEYS[3], sender) == 1 then
      n = n - redis.call('SISMEMBER', KEYS[1], sender)
    end
  end
  local rate, cap = tonumber(ARGV[11]), tonumber(ARGV[12]) * 60000
  local cost = math.max(n, 1) * tonumber(ARGV[13]) * 60000
  local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  local b = redis.call('HMGET', KEYS[4], 't', 'ts')
  local have = cap
  if b[1] then
    have = math.min(cap, tonumber(b[1]) + math.max(0, now_ms - tonumber(b[2])) * rate)
  end
  local need = math.min(cost, cap)
  if have < need then return math.ceil((need - have) / rate) end
  have = have - cost
  redis.call('HSET', KEYS[4], 't', have, 'ts', now_ms)
  redis.call('PEXPIRE', KEYS[4], math.ceil((cap - have) / rate) + 1000)
end
local targets
if mode == 'server' then
  targets = {target}
elseif mode == 'all' then
  targets = redis.call('SMEMBERS', KEYS[1])
else
  targets = redis.call('SINTER', KEYS[3], KEYS[1])
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', 'e', ARGV[4])
local oldest = '(' .. (tonumber(now[1]) - tonumber(ARGV[9])) * 1000 .. '-0'
local n = 0
for _, t in ipairs(targets) do
  if mode == 'server' or t ~= sender then
    local key = ARGV[7] .. t
    redis.call('XADD', key, 'MAXLEN', '~', ARGV[6], id, 'e', ARGV[4], 'd', ARGV[5])
    local extra = redis.call('XLEN', key) - keep
    if extra > 0 then
      local aged = redis.call('XRANGE', key, '-', oldest, 'COUNT', math.min(extra, step))
      if #aged > 0 then redis.call('XTRIM', key, 'MAXLEN', keep + extra - #aged) end
    end
    n = n + 1
  end
end
return {id, n}""")


def deliver(r: Any, config: Config, to: str, sender: str, event: str,
            data: dict[str, Any], budget: bool = False) -> tuple[str, int]:
    """Append ``data`` to the inbox of each target of ``to``; returns (stream id, copies).

    ``to`` is a server id, ``*`` or ``#channel`` (channel names are lowercase). A server id
    target receives the entry even when it is the sender; ``*`` and channels skip the sender.
    With ``budget`` (message.send) the sender's send budget pays first, in the same script:
    :func:`cost_per_recipient` units per recipient (at least one recipient's worth per
    message); when it is short nothing is written. NotFound for an unknown server id,
    RateLimited when the budget is short. One round trip.
    """
    if to == "*":
        mode, target, members = "all", "", keys.servers_all()
    elif to.startswith("#"):
        mode, target, members = "set", "", keys.channel(to[1:])
    else:
        mode, target, members = "server", to, keys.servers_all()
    payload = json.dumps(data, ensure_ascii=False)
    ks = [keys.servers_all(), keys.message_ids(), members]
    argv: list[Any] = [mode, target, sender, event, payload, config.message_hard_cap,
                       keys.inbox_prefix(), config.message_keep_count,
                       config.message_keep_seconds, TRIM_STEP]
    units = 0
    if budget and config.message_send_budget:
        units = cost_per_recipient(data.get("body", ""))
        ks.append(keys.send_budget(sender))
        argv += [config.message_send_budget, config.message_send_burst, units]
    got = DELIVER(r, ks, argv)
    if isinstance(got, int):
        raise RateLimited(f"send budget spent: MESSAGE_SEND_BUDGET allows "
                          f"{config.message_send_budget} recipients a minute (a message costs "
                          f"{units} per recipient); retry in {math.ceil(got / 1000)} s",
                          retry_after=math.ceil(got / 1000))
    if not got:
        raise NotFound(f"no server with id {to}")
    return got[0], int(got[1])


def cost_per_recipient(body: str) -> int:
    """Budget units one copy of ``body`` costs: one per started KiB of the body as stored
    (UTF-8 JSON string), so that a unit stands for at most about 1 KiB of inbox whatever the
    text: a body of up to 1,024 ASCII characters costs 1."""
    stored = len(json.dumps(body, ensure_ascii=False).encode()) - 2
    return max(1, math.ceil(stored / KIB))


def entry(stream_id: str, fields: dict[str, str]) -> dict[str, Any]:
    """One inbox entry as message.read returns it: ``{id, from, to, type, body, at, ...}``."""
    return {"id": stream_id, **json.loads(fields.get("d", "{}"))}


def event(fields: dict[str, str]) -> str:
    return fields.get("e", "message")


# KEYS: the server's poll set. ARGV: token, cap, wait ms, grace ms. Takes a slot and returns 0,
# or returns the ms until the oldest open poll's wait ends when all ``cap`` slots are taken.
POLL_ENTER = Lua("""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local grace = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(first[2]) - grace - now)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]) + grace, ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 0""")
POLL_GRACE_MS = 10_000  # a poll whose process died frees its slot this long after its wait


@contextmanager
def long_poll(r: Any, config: Config, server_id: str, wait: int) -> Iterator[None]:
    """Hold one of the server's LONGPOLL_PER_SERVER_MAX long-poll slots while the block runs.

    RateLimited (429, ``Retry-After`` = seconds until the oldest open poll's wait ends) when all
    are taken. A slot is given back when the block ends, or ``wait`` + 10 s later if the process
    dies first. One round trip to take, one to give back; nothing when the cap is 0 (off).
    """
    cap = config.longpoll_per_server_max
    if not cap:
        yield
        return
    key, token = keys.server_polls(server_id), secrets.token_hex(8)
    busy_ms = POLL_ENTER(r, [key], [token, cap, wait * 1000, POLL_GRACE_MS])
    if busy_ms:
        raise RateLimited(f"this server already has {cap} long-polls open "
                          "(LONGPOLL_PER_SERVER_MAX); one poll at a time is enough",
                          retry_after=math.ceil(int(busy_ms) / 1000))
    try:
        yield
    finally:
        r.zrem(key, token)


def read(r: Any, server_id: str, cursor: str, count: int,
         block_ms: int | None = None) -> list[tuple[str, dict[str, str]]]:
    """Entries after ``cursor`` ("0" = the oldest kept), oldest first, at most ``count``.

    With ``block_ms`` and nothing pending, waits up to that long for the first arrival (one
    XREAD [BLOCK]: it answers at once when entries are already there). One round trip.
    """
    with metrics.longpoll() if block_ms else contextlib.nullcontext():  # long-polls gauge
        got = r.xread({keys.inbox(server_id): cursor}, count=count, block=block_ms or None)
    return got[0][1] if got else []


# --- deliver once, behind a marker ------------------------------------------------------------
# Lua: deliver(KEYS, ARGV) is DELIVER verbatim, wrapped as a function, so stream ids come from
# the id log like every other delivery; delivered(marker) says whether the marker says it was
# done; mark(marker, value, ttl (ms)) sets it, in the same script as the delivery, so a retried
# job or push never appends anything twice (bans.PUSH, :data:`SEND_ONCE`, status.ANNOUNCE).
ONCE = ("local function deliver(KEYS, ARGV)\n" + DELIVER.source + "\nend\n" + """
local function delivered(marker) return redis.call('EXISTS', marker) == 1 end
local function mark(marker, value, ttl_ms) redis.call('SET', marker, value, 'PX', ttl_ms) end
""")


# --- for the worker's job scripts (shared/jobs.py) --------------------------------------------
# Prelude of every worker job script (shared/jobs.py): :data:`ONCE`, then, with KEYS[1] servers
# set, KEYS[2] id log and ARGV[1..5] delivery settings, send(server, event, data), which
# appends data (JSON-encoded here) to one server's inbox through DELIVER; false when the server
# is not registered.
JOB_PRELUDE = (ONCE + """
local function send(server, event, data)
  return deliver({KEYS[1], KEYS[2], KEYS[1]}, {'server', server, 'ssm', event,
    cjson.encode(data), ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]})
end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function live(server, ttl)
  local beat = redis.call('ZSCORE', KEYS[7], server)
  return beat and tonumber(beat) >= now_ms - tonumber(ttl) * 1000
end
""")


# KEYS 1 servers set, 2 id log, 3 the notice's marker (``keys.notice_sent``)
# ARGV 1..5 delivery settings, 6 server id, 7 event, 8 payload JSON (gets ``at``: now),
# 9 marker TTL (ms). Appends the notice to the server's inbox unless the marker says it was,
# and sets the marker in the same script: a retried job never appends a notice twice.
# Returns 'sent', 'done' (marked already) or 'no_server' (not registered).
SEND_ONCE = Lua(JOB_PRELUDE + """
if delivered(KEYS[3]) then return 'done' end
local data = cjson.decode(ARGV[8])
data['at'] = now_ms / 1000
if not send(ARGV[6], ARGV[7], data) then return 'no_server' end
mark(KEYS[3], '1', ARGV[9])
return 'sent'""")
MARKER_TTL_MS = 7 * 86400 * 1000  # longer than any job's retries


def send_once(r: Any, config: Config, marker: str, server_id: str, event: str,
              data: dict[str, Any]) -> str:
    """Append ``data`` (its ``at`` set to now) to ``server_id``'s inbox once per ``marker``
    (:data:`SEND_ONCE`): 'sent', 'done' or 'no_server'. One round trip, on the ``{msg}``
    slot."""
    return SEND_ONCE(r, [*job_keys(), keys.notice_sent(marker)],
                     [*job_args(config), server_id, event,
                      json.dumps(data, ensure_ascii=False), MARKER_TTL_MS])


def job_keys() -> list[str]:
    """KEYS[1..2] of every job script: the servers set and the id log."""
    return [keys.servers_all(), keys.message_ids()]


def job_args(config: Config) -> list[Any]:
    """ARGV[1..5] of every job script: the delivery settings."""
    return [config.message_hard_cap, keys.inbox_prefix(), config.message_keep_count,
            config.message_keep_seconds, TRIM_STEP]


# KEYS: inboxes. ARGV: keep count, keep seconds, step. Returns entries dropped.
TRIM = Lua("""
local t = redis.call('TIME')
local oldest = '(' .. (tonumber(t[1]) - tonumber(ARGV[2])) * 1000 .. '-0'
local keep, step, dropped = tonumber(ARGV[1]), tonumber(ARGV[3]), 0
for _, key in ipairs(KEYS) do
  for _ = 1, 100 do
    local len = redis.call('XLEN', key)
    if len <= keep then break end
    local want = math.min(len - keep, step)
    local aged = #redis.call('XRANGE', key, '-', oldest, 'COUNT', want)
    if aged > 0 then redis.call('XTRIM', key, 'MAXLEN', len - aged) end
    dropped = dropped + aged
    if aged < want then break end
  end
end
return dropped""")


def trim_aged(r: Any, config: Config) -> int:
    """Drop inbox entries older than MESSAGE_KEEP_SECONDS that are not among the newest
    MESSAGE_KEEP_COUNT of their inbox; returns how many. 1 + one round trip per 100 servers."""
    servers = sorted(r.smembers(keys.servers_all()))
    dropped = 0
    for i in range(0, len(servers), 100):
        dropped += TRIM(r, [keys.inbox(s) for s in servers[i:i + 100]],
                        [config.message_keep_count, config.message_keep_seconds, 1000])
    return dropped
