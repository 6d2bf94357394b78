"""Seasons (README "Seasons"): a board created with ``reset`` starts empty at every UTC day, week
(Monday 00:00) or month, and keeps its past seasons read-only.

The season is a function of the clock, never of a stored pointer, so reads and writes are right
even when no worker runs: a board's records for the season holding time ``t`` live in keys named
by the calendar period of ``t`` (``period_id``: ``d<days since 1970-01-01>``, ``w<Monday-weeks
since then>``, ``m<months since then>``), and season ``n`` is the ``n``-th period counted from
the one holding the board's ``created`` (season 0). The scripts in shared/storage/records.py
take the keys of all three kinds of period for the time of the request and pick by the board's
``reset`` (``PICK``), so a record or a read costs no extra round trip.

The worker (``shared.jobs.archive_seasons``, queued when ``keys.seasons_due`` says a season has
ended) archives each ended season once, in one script on the board's own slot: its top 3 into
``keys.board_seasons`` and a ``season.ended`` webhook event into the board's outbox (only for a
season that had records), then drops the keys of seasons older than the kept count
(SEASONS_KEPT, at least 24, besides the current one). It waits ``GRACE_SECONDS`` after a
boundary, so a request that read the clock just before it still lands before the archive. A
past season not yet archived is read live from its keys, so what the API shows does not depend
on the worker either.
"""

from __future__ import annotations

import calendar
import functools
from datetime import UTC, datetime
from typing import Any

from shared import events, keys, lua
from shared.redis_conn import Lua

RESETS = ("daily", "weekly", "monthly")
GRACE_SECONDS = 10  # a season is archived this long after it ended
TRIM_BATCH = 100  # seasons whose keys one archive script drops at most
DUE_BATCH = 100  # boards one archive job takes from the due index at a time
DAY = 86400


def period(reset: str, t: float) -> int:
    """The number of the calendar period holding unix time ``t``: days, Monday-weeks or months
    since 1970 (1970-01-01 was a Thursday, so Monday-weeks count from 1969-12-29)."""
    if reset == "monthly":
        d = datetime.fromtimestamp(t, UTC)
        return (d.year - 1970) * 12 + d.month - 1
    days = int(t // DAY)
    return days if reset == "daily" else (days + 3) // 7


def period_start(reset: str, p: int) -> int:
    """When period ``p`` begins (unix seconds)."""
    if reset == "monthly":
        return calendar.timegm((1970 + p // 12, p % 12 + 1, 1, 0, 0, 0))
    return p * DAY if reset == "daily" else p * 7 * DAY - 3 * DAY


def period_id(reset: str, p: int) -> str:
    return f"{reset[0]}{p}"


def number(reset: str, created: float, t: float) -> int:
    """The season holding time ``t`` of a board created at ``created``: 0 for the first."""
    return max(0, period(reset, t) - period(reset, created))


def bounds(reset: str, created: float, n: int) -> tuple[int, int]:
    """(start, end) of season ``n``, unix seconds: the calendar period's, so season 0 starts
    at the boundary before the board was created."""
    p = period(reset, created) + n
    return period_start(reset, p), period_start(reset, p + 1)


def time_keys(board_id: str, t: float) -> list[str]:
    """The rank and records keys of a board for the time ``t``, for each kind of board in the
    order ``PICK`` reads them: no reset, daily, weekly, monthly."""
    return list(_day_keys(board_id, int(t // DAY)))


@functools.lru_cache(maxsize=4096)
def _day_keys(board_id: str, day: int) -> tuple[str, ...]:
    """``time_keys`` for a UTC day (every period is whole days), built once a day per board:
    every page and submit asks, and a profile asks for each of the player's boards."""
    t = day * DAY
    out = [keys.board_rank(board_id), keys.board_records(board_id)]
    for reset in RESETS:
        pid = period_id(reset, period(reset, t))
        out += [keys.board_rank(board_id, pid), keys.board_records(board_id, pid)]
    return tuple(out)


def season_keys(board_id: str, reset: str, created: float, n: int) -> list[str]:
    """The rank and records keys of season ``n``."""
    pid = period_id(reset, period(reset, created) + n)
    return [keys.board_rank(board_id, pid), keys.board_records(board_id, pid)]


def kept_from(current: int, kept: int) -> int:
    """The oldest season still kept: ``kept`` past seasons besides the current one."""
    return max(0, current - kept)


# Lua, after KEYS[1] = the board's meta and KEYS[2..9] = ``time_keys``: RANK and REC, the keys
# of the board's season (or of its only ranking, without reset).
PICK = """
local RANK, REC = KEYS[2], KEYS[3]
do
  local reset = redis.call('HGET', KEYS[1], 'reset')
  if reset == 'daily' then RANK, REC = KEYS[4], KEYS[5]
  elseif reset == 'weekly' then RANK, REC = KEYS[6], KEYS[7]
  elseif reset == 'monthly' then RANK, REC = KEYS[8], KEYS[9] end
end
"""

# Lua: top3(rank key, records key) -> the best 3 stored records of one season (JSON texts), and
# each as the event shows it ({rank, player, score}, for ``lua.JSON``).
TOP3 = lua.MEMBER + """
local function top3(rank, rec)
  local raws, top = {}, {}
  for _, m in ipairs(redis.call('ZRANGE', rank, 0, 2)) do
    local raw = redis.call('HGET', rec, lname_of(m))
    if raw then
      local stored = cjson.decode(raw)
      raws[#raws + 1] = raw
      top[#top + 1] = {rank = #raws, player = stored['player'], score = stored['score']}
    end
  end
  return raws, top
end
"""

# KEYS: meta, the board's seasons hash, outbox, then (rank, rec) for each season to archive,
# then the keys to drop. ARGV: board id, how many seasons to archive (k), the new oldest kept
# season, then (season, start, end) for each of the k seasons, then the seasons hash fields to
# drop. Each season not archived yet gets its top 3 (the stored records, as a JSON list) and,
# when it had any record, a season.ended event: both in this one script, so the event exists
# exactly once. Returns how many events were emitted.
ARCHIVE = Lua(events.LUA + lua.JSON + TOP3 + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local k = tonumber(ARGV[2])
local emitted = 0
for i = 1, k do
  local n, s, e = ARGV[3 + 3 * i - 2], ARGV[3 + 3 * i - 1], ARGV[3 + 3 * i]
  if redis.call('HEXISTS', KEYS[2], n) == 0 then
    local raws, top = top3(KEYS[2 + 2 * i], KEYS[3 + 2 * i])
    redis.call('HSET', KEYS[2], n, '[' .. table.concat(raws, ',') .. ']')
    if #raws > 0 then
      emit(KEYS[3], 'season.ended', json({board = ARGV[1], season = tonumber(n),
           start = tonumber(s), ['end'] = tonumber(e), top = top}))
      emitted = emitted + 1
    end
  end
end
for i = 4 + 2 * k, #KEYS do redis.call('DEL', KEYS[i]) end
for i = 4 + 3 * k, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end
redis.call('HSET', KEYS[2], 'from', ARGV[3])
return emitted""")

# KEYS: due index, lock (the {seasons} slot). ARGV: now (ms), period (ms), owner. 1 when a
# board's season has ended and this caller won the period's lock; writes nothing otherwise.
DUE = Lua(lua.DUE_THEN_LOCK + """
return due_then_lock(#redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1) > 0,
                     KEYS[2], ARGV[2], ARGV[3])""")


def due_at(reset: str, created: float, n: int) -> int:
    """When the worker should archive season ``n`` (unix ms): its end plus the grace period."""
    return (bounds(reset, created, n)[1] + GRACE_SECONDS) * 1000


def due(r: Any, owner: str, now_ms: int, period_ms: int) -> bool:
    """Whether to queue the archive job now (one round trip, no write when nothing is due)."""
    return DUE(r, [keys.seasons_due(), keys.seasons_job_lock()], [now_ms, period_ms, owner]) == 1


def archive(r: Any, board_id: str, now: float, kept: int) -> int:
    """Archive every ended season of one board (those that ended at least GRACE_SECONDS before
    ``now``) and drop the seasons beyond the kept count, then move the board's due time to the
    end of its current season. Idempotent; returns how many season.ended events were emitted.
    Ordered steps: the board's own slot first, the due index (an index) last."""
    pipe = r.pipeline(transaction=False)
    pipe.hmget(keys.board(board_id), "reset", "created")
    pipe.hget(keys.board_seasons(board_id), "from")
    (reset, created), old_from = pipe.execute()
    if reset not in RESETS:  # not a board with seasons (a create that failed half-way)
        r.zrem(keys.seasons_due(), board_id)
        return 0
    created_s = float(created)
    current = number(reset, created_s, now - GRACE_SECONDS)
    lo = kept_from(current, kept)
    emitted = 0
    drop = list(range(int(old_from or 0), lo))  # seasons now beyond the kept count
    while True:  # the ended seasons go with the last batch of drops
        batch, drop = drop[:TRIM_BATCH], drop[TRIM_BATCH:]
        ended = range(lo, current) if not drop else range(0)
        keys_in = [keys.board(board_id), keys.board_seasons(board_id),
                   keys.board_outbox(board_id)]
        args: list[Any] = [board_id, len(ended), batch[-1] + 1 if drop else lo]
        for n in ended:
            keys_in += season_keys(board_id, reset, created_s, n)
            args += [n, *bounds(reset, created_s, n)]
        for n in batch:
            keys_in += season_keys(board_id, reset, created_s, n)
        args += batch
        emitted += int(ARCHIVE(r, keys_in, args))
        if not drop:
            break
    r.zadd(keys.seasons_due(), {board_id: due_at(reset, created_s, current)})
    return emitted


def top_of(stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A season's best stored records, best first, as callers see them: [{rank, player,
    score}] (from the archive, or read live)."""
    return [{"rank": i + 1, "player": rec["player"], "score": rec["score"]}
            for i, rec in enumerate(stored)]
