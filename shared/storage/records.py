"""Leaderboards: how records are encoded in Redis, the scripts that read and write them, and how
a record is rendered.

A board ``{b:<board>}`` has three keys (see shared/keys.py): ``meta`` (order, operator, created,
reset), ``rank`` (zset) and ``rec`` (hash lname -> record JSON); a board with ``reset`` has a
``rank`` and a ``rec`` per season (shared/storage/seasons.py), and every script below takes the
keys of the request's time and picks the board's (``seasons.PICK``). The zset member is
``<at ms, 13 digits>:<lname>`` and its score the value, negated on a ``desc`` board, so ZRANGE
ascending is rank order and equal values rank the earlier record first. Values are integers
kept within +-(2**53 - 1) (exact in a double); ``incr`` saturates there, ``decr`` floors at 0.
"""

from __future__ import annotations

import json
from typing import Any

from shared import events, keys, lua
from shared.errors import NotFound
from shared.redis_conn import Lua, Reads
from shared.schema import BOARD_ID, Str
from shared.storage import seasons

BOARD = Str("board", where="path", pattern=BOARD_ID, doc="board id [a-z0-9_.:-]{1,64}")
ORDERS = ("asc", "desc")
OPERATORS = ("best", "set", "incr", "decr")


def board_keys(board_id: str, t: float) -> list[str]:
    """The board's meta, then its rank and records keys for the time ``t`` (unix seconds) for
    each kind of board (``seasons.time_keys``): one hash tag, in the order scripts take them."""
    return [keys.board(board_id), *seasons.time_keys(board_id, t)]


member = lua.member  # the rank zset's member: lua.MEMBER reads it in scripts


# KEYS: meta, the 8 rank and rec keys of ``seasons.time_keys``, the board's outbox (one board's
# slot).
# ARGV: lname, score, record JSON without player and score ('{...}'), new member, max,
# submitting server id (unused), oldest live heartbeat (unused), board id, the record.top
# event's {meta, server, at} ('{...}'), the player's display name.
# Returns false for an unknown board, else {rank, value as text, improved}. The checks that the
# player exists and is online on a live server come first, in their own slots
# (:data:`ENTER`), with the player's board set (an index, a superset): this script writes only
# the board, last (docs/CLUSTER.md). Numbers go back to Redis through string.format('%.0f') (Lua's
# tostring keeps 14 digits). A record that takes #1 from another player (or is a board's
# first) emits ``record.top`` into the board's outbox (shared/events.py).
SUBMIT = Lua(events.LUA + lua.MEMBER + seasons.PICK + """
local order = redis.call('HGET', KEYS[1], 'order')
if not order then return false end
local acct = {ARGV[10]}
local op = redis.call('HGET', KEYS[1], 'operator')
local desc = order == 'desc'
local new, max = tonumber(ARGV[2]), tonumber(ARGV[5])
local old, oldmember
local raw = redis.call('HGET', REC, ARGV[1])
if raw then
  oldmember = cjson.decode(raw)['member']
  old = tonumber(redis.call('ZSCORE', RANK, oldmember))
  if desc then old = -old end
end
local value = new
if old then
  if op == 'best' then
    if (desc and old >= new) or ((not desc) and old <= new) then value = old end
  elseif op == 'incr' then value = old + new
  elseif op == 'decr' then value = old - new end
elseif op == 'decr' then value = -new end
if op == 'decr' and value < 0 then value = 0 end
if value > max then value = max elseif value < -max then value = -max end
if value == 0 then value = 0 end
local improved = (not old) or (desc and value > old) or ((not desc) and value < old)
local m = oldmember
local first = redis.call('ZRANGE', RANK, 0, 0)[1]
if (not old) or value ~= old then
  if oldmember then redis.call('ZREM', RANK, oldmember) end
  m = ARGV[4]
  local z = value
  if desc then z = -value end
  if z == 0 then z = 0 end
  local text = string.format('%.0f', value)
  redis.call('ZADD', RANK, string.format('%.0f', z), m)
  redis.call('HSET', REC, ARGV[1], '{"player":' .. cjson.encode(acct[1]) .. ',' ..
             string.sub(ARGV[3], 2, -2) .. ',"score":' .. text .. '}')
end
local rank = redis.call('ZRANK', RANK, m) + 1
local text = string.format('%.0f', value)
if rank == 1 and (not first or lname_of(first) ~= ARGV[1]) then
  local prev = 'null'
  if first then
    local p = cjson.decode(redis.call('HGET', REC, lname_of(first)) or '{}')
    if p['player'] then
      prev = '{"player":' .. cjson.encode(p['player']) .. ',"score":' ..
             string.format('%.0f', p['score']) .. '}'
    end
  end
  emit(KEYS[10], 'record.top', '{"board":' .. cjson.encode(ARGV[8]) .. ',"rank":1,"player":' ..
       cjson.encode(acct[1]) .. ',"score":' .. text .. ',' .. string.sub(ARGV[9], 2, -2) ..
       ',"previous":' .. prev .. '}')
end
return {rank, text, improved and 1 or 0}
""")

# KEYS: account, board set (one player's slot). ARGV: board id. The first step of a record:
# the board joins the player's board set (a superset: a board there without the player's record
# holds none) when the account exists; returns the account's {name, server}.
ENTER = Lua("""
local acct = redis.call('HMGET', KEYS[1], 'name', 'server')
if acct[1] then redis.call('SADD', KEYS[2], ARGV[1]) end
return acct""")

# Lua, after ``seasons.PICK``: remove(lname) -> false for an unknown board, 0 when the player
# has no record there, 1 when the record was removed.
_REMOVE = seasons.PICK + """
local function remove(lname)
  if redis.call('EXISTS', KEYS[1]) == 0 then return false end
  local raw = redis.call('HGET', REC, lname)
  if not raw then return 0 end
  redis.call('ZREM', RANK, cjson.decode(raw)['member'])
  redis.call('HDEL', REC, lname)
  return 1
end
"""

# KEYS: ``board_keys`` (one board). ARGV: lname. Returns as ``remove``.
REMOVE = Lua(_REMOVE + "return remove(ARGV[1])")

# KEYS: ``board_keys`` for a time in an ended season, the board's seasons hash. ARGV: lname,
# the season's number. Removes the record from that season, and when the worker has archived
# the season, archives its top 3 again (no second event). Returns as ``remove``.
REMOVE_PAST = Lua(_REMOVE + seasons.TOP3 + """
local got = remove(ARGV[1])
if got == 1 and redis.call('HEXISTS', KEYS[10], ARGV[2]) == 1 then
  local raws = top3(RANK, REC)
  redis.call('HSET', KEYS[10], ARGV[2], '[' .. table.concat(raws, ',') .. ']')
end
return got""")

# KEYS: ``board_keys`` (one board). ARGV: lname. Returns {rank, record JSON} or false.
OF_PLAYER = Lua(seasons.PICK + """
local raw = redis.call('HGET', REC, ARGV[1])
if not raw then return false end
local rank = redis.call('ZRANK', RANK, cjson.decode(raw)['member'])
if not rank then return false end
return {rank + 1, raw}""")

# KEYS: ``board_keys``. ARGV: first index (0-based), count. Returns false for an unknown
# board, else {more (0|1), record JSON...} for up to count records from that index.
TOP = Lua(lua.MEMBER + seasons.PICK + """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local first, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local members = redis.call('ZRANGE', RANK, first, first + n)
local out = {0}
if #members > n then out[1] = 1; members[#members] = nil end
for _, m in ipairs(members) do
  out[#out + 1] = redis.call('HGET', REC, lname_of(m)) or 'null'
end
return out""")

# KEYS: ``board_keys``. ARGV: lname, around. Returns false for an unknown board, {} when the
# player has no record, else {first rank (1-based), record JSON...} from rank-around to rank+around.
AROUND = Lua(lua.MEMBER + seasons.PICK + """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local raw = redis.call('HGET', REC, ARGV[1])
if not raw then return {} end
local rank = redis.call('ZRANK', RANK, cjson.decode(raw)['member'])
if not rank then return {} end
local around = tonumber(ARGV[2])
local first = math.max(0, rank - around)
local out = {first + 1}
for _, m in ipairs(redis.call('ZRANGE', RANK, first, rank + around)) do
  out[#out + 1] = redis.call('HGET', REC, lname_of(m)) or 'null'
end
return out""")

def page(r: Any, board_id: str, t: float, first: int, limit: int) -> dict[str, Any]:
    """``{records, next_cursor}``: ``limit`` records of the board from rank ``first`` + 1, for
    the season holding time ``t`` (``record.top``, ``season.records``). One round trip."""
    out = TOP(r, board_keys(board_id, t), [first, limit])
    if not out:
        raise no_board(board_id)
    more, *raws = out
    listed = [render(raw, first + i + 1) for i, raw in enumerate(raws) if raw != "null"]
    return {"records": listed, "next_cursor": str(first + limit) if more else None}


def season_listing(r: Any, board_id: str, now: float, kept: int,
                   page: tuple[int | None, int, int] | None = None, stored: bool = False,
                   ) -> tuple[dict[str, Any], dict | None]:
    """(``season.list``'s answer, the page ``(season, first, limit)`` as :func:`page` answers
    it (season None: the current one), or None without ``page``). On the board's slot: its
    meta and archive with the current season's top 3 and page (the keys of the season holding
    ``now`` need no meta: the scripts pick them), one round trip; a second only for an ended
    season the worker has not archived yet (read live from its keys) or a page of a season
    named by number.
    The season is checked as ``season_time`` checks it. With ``stored``, the page holds
    ``stored``: (first, the records' stored JSON) instead of ``records``."""
    show, first, limit = page or (None, 0, 0)
    pipe = Reads(r)  # both round trips: reads (a page's, season.list's)
    pipe.add("HMGET", keys.board(board_id), "order", "operator", "reset", "created")
    pipe.add("HGETALL", keys.board_seasons(board_id))
    TOP(r, board_keys(board_id, now), [0, 3], pipeline=pipe)
    if page is not None and show is None:
        TOP(r, board_keys(board_id, now), [first, limit], pipeline=pipe)
    (order, operator, reset, created), archived, current_top, *now_page = pipe.execute()
    if not order:
        raise no_board(board_id)
    created_s = float(created)
    listed: list[tuple[int, int, int | None]]
    if reset:
        current = seasons.number(reset, created_s, now)
        oldest = seasons.kept_from(current, kept)
        listed = [(n, *seasons.bounds(reset, created_s, n)) for n in range(current, oldest - 1, -1)]
    else:
        current, oldest, listed = 0, 0, [(0, int(created_s), None)]
    if show is not None:
        if not reset and show:
            raise NotFound(f"board {board_id} has no seasons: its only one is 0")
        if show > current:
            raise NotFound(f"board {board_id} has no season {show} yet (the current one is "
                           f"{current})")
        if show < oldest:
            raise NotFound(f"season {show} of board {board_id} is no longer kept")
    live = [n for n, start, _ in listed if n != current and str(n) not in archived]
    past_page = page is not None and not now_page  # not read with the current season's
    tops = {current: current_top}
    if live or past_page:
        pipe = Reads(r)
        for n, start, _ in listed:
            if n in live:
                TOP(r, board_keys(board_id, start), [0, 3], pipeline=pipe)
        if past_page:
            t = now if show is None or show == current else seasons.bounds(reset, created_s,
                                                                            show)[0]
            TOP(r, board_keys(board_id, t), [first, limit], pipeline=pipe)
        got = pipe.execute()
        tops.update(zip(live, got, strict=False))
        if past_page:
            now_page = got[len(live):]
    out = []
    for n, start, end in listed:
        if n in tops:  # TOP's answer: {more, record JSON...}
            top = seasons.top_of([json.loads(raw) for raw in (tops[n] or [0])[1:]
                                  if raw != "null"])
        else:
            top = seasons.top_of(json.loads(archived[str(n)]))
        out.append({"season": n, "start": start, "end": end, "top": top})
    shown: dict[str, Any] | None = None
    if page is not None:
        if not now_page[0]:
            raise no_board(board_id)
        more, *raws = now_page[0]
        shown = {"next_cursor": str(first + limit) if more else None}
        if stored:  # the records as stored, for a caller that caches by them: (first, raws)
            shown["stored"] = (first, tuple(raws))
        else:
            shown["records"] = [render(raw, first + i + 1) for i, raw in enumerate(raws)
                                if raw != "null"]
    return ({"board": board_id, "order": order, "operator": operator, "reset": reset,
             "current": current, "seasons": out}, shown)


def season_time(r: Any, board_id: str, n: int, now: float, kept: int) -> tuple[float, bool]:
    """(a time within season ``n`` of the board, whether that season has ended), for the keys
    of an operation on one season (``season.records``, ``record.void``). One round trip (the
    board's meta). Raises NotFound for an unknown board, a season not begun, one no longer kept,
    and any season but 0 of a board without ``reset``."""
    order, reset, created = r.hmget(keys.board(board_id), "order", "reset", "created")
    if not order:
        raise no_board(board_id)
    if not reset:
        if n:
            raise NotFound(f"board {board_id} has no seasons: its only one is 0")
        return now, False
    current = seasons.number(reset, float(created), now)
    if n > current:
        raise NotFound(f"board {board_id} has no season {n} yet (the current one is {current})")
    if n < seasons.kept_from(current, kept):
        raise NotFound(f"season {n} of board {board_id} is no longer kept")
    if n == current:
        return now, False
    return seasons.bounds(reset, float(created), n)[0], True


def render(raw: str, rank: int) -> dict[str, Any]:
    """A stored record as callers see it: {rank, player, score, meta, server, at}."""
    rec = json.loads(raw)
    return {"rank": rank, "player": rec["player"], "score": rec["score"], "meta": rec["meta"],
            "server": rec["server"], "at": rec["at"]}


def listing(r: Any) -> list[dict[str, str]]:
    """``[{board, order, operator, reset?}]`` for every board in the index, sorted by id; two
    round trips (the index, then every meta hash in one pipeline, each read on its own slot)."""
    ids = sorted(r.smembers(keys.boards_index()))
    pipe = r.pipeline(transaction=False)
    for board_id in ids:
        pipe.hmget(keys.board(board_id), "order", "operator", "reset")
    return [{"board": board_id, "order": order, "operator": operator,
             **({"reset": reset} if reset else {})}
            for board_id, (order, operator, reset) in zip(ids, pipe.execute(), strict=True)
            if order]


def no_board(board_id: str) -> NotFound:
    return NotFound(f"no board named {board_id}")
