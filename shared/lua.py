"""Lua facts that scripts of several stores share, each declared once.

A fact is a Lua source snippet defining a local function, put in front of a script's source
(as ``events.LUA``, ``seasons.PICK`` and ``messages.ONCE`` are), next to its Python twin when
it has one. A script composed of it states the fact by calling the function, never by
repeating its text.
"""

from __future__ import annotations

# --- due, then take the lock ------------------------------------------------------------------
# The worker's periodic jobs (the table in shared/worker.py) are queued at most once per period
# fleet-wide: a script on the slot of what the job reads says whether the job is due and, only
# then, takes the period's lock in the same slot, so an idle fleet writes nothing.
# Lua: due_then_lock(due, lock key, period (ms), owner) -> 1 when ``due`` holds and this caller
# took the period's lock (SET NX PX), else 0; writes nothing when not due.
DUE_THEN_LOCK = """
local function due_then_lock(due, lock, period_ms, owner)
  if not due then return 0 end
  if redis.call('SET', lock, owner, 'NX', 'PX', period_ms) then return 1 end
  return 0
end
"""

# --- a capped hash ---------------------------------------------------------------------------
# A hash that holds at most ``cap`` fields (a player's or server's settings, a player's blocked
# senders): a new field is refused once it is full; an existing one is always overwritten.
# Lua: hset_capped(key, field, value, cap) -> 1 stored (or replaced), 0 refused (full).
HSET_CAPPED = """
local function hset_capped(key, field, value, cap)
  if redis.call('HEXISTS', key, field) == 0 and redis.call('HLEN', key) >= cap then
    return 0
  end
  redis.call('HSET', key, field, value)
  return 1
end
"""

# --- a board's zset member --------------------------------------------------------------------
# A record's member in a board's rank zset (shared/storage/records.py): ``<at ms, 13 digits>:
# <lname>``, so equal values rank the earlier record first.
MEMBER_DIGITS = 13


def member(at_ms: int, lname: str) -> str:
    return f"{at_ms:0{MEMBER_DIGITS}d}:{lname}"


# Lua: lname_of(member) -> the lname a rank member names (the records hash's field).
MEMBER = f"""
local function lname_of(m) return string.sub(m, {MEMBER_DIGITS + 2}) end
"""


# --- JSON -------------------------------------------------------------------------------------
# Scripts write JSON through cjson, never by joining texts. cjson writes a number with 14
# significant digits, and a board's values are integers of up to 16 (within +-(2**53 - 1)), so
# json() is cjson.encode except that an integral number is written with every digit. A table is
# an array when it has a first element (cjson's rule for the tables scripts build), otherwise an
# object. Stored JSON texts copied verbatim into a list (a season's archived records) are joined
# as they are, being JSON already: decoding and encoding them again could change what they hold.
# Lua: json(value) -> JSON text.
JSON = """
local function json(v)
  local t = type(v)
  if t == 'number' and v == math.floor(v) and math.abs(v) < 2^53 then
    return string.format('%.0f', v)
  elseif t ~= 'table' then
    return cjson.encode(v)
  end
  local out = {}
  if v[1] ~= nil then
    for i = 1, #v do out[i] = json(v[i]) end
    return '[' .. table.concat(out, ',') .. ']'
  end
  for k, x in pairs(v) do out[#out + 1] = cjson.encode(k) .. ':' .. json(x) end
  return '{' .. table.concat(out, ',') .. '}'
end
"""
