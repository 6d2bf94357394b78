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
