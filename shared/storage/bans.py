"""Bans: storage, the one-command check, and the ordered steps that announce a ban or a lift.

Everything about bans lives in the ``{bans}`` group (see shared/keys.py): the ban hashes, the
history lists, and one lookup index, a hash whose fields are ``p:<lname>`` (a player) and
``n<4|6>:<network address in hex>/<prefix length>`` (an address range), each holding the JSON
list of the active bans on it. Checking an address computes in Python the network of that
address at every prefix length from /16 (IPv4) or /48 (IPv6), plus one field holding the few
ranges wider than that (forced by the admin), so a check is ONE ``HMGET`` of at most 83
fields, whatever the number of bans: it runs in the credential check's round trip
(``ban.check``) or alone (``presence.join``).

A ban or lift touches several groups; its steps are ordered so a crash or a retry between them
never shows a half-done state:

1. ``{bans}`` script: the ban (or its lift) with its index entries, plus an outbox entry
   ``ban:<id>`` / ``unban:<id>`` naming the steps still to do (``keys.ban_outbox``), and the
   webhook event ``ban.created`` / ``ban.lifted`` (``events``: one XADD into the group's
   events outbox, ``keys.outbox("bans")``), written only when the ban or lift is.
2. ``{p:<lname>}`` (player bans): a copy of the ban next to the account (presence.join's own
   script checks it) and, for a ban, the player marked offline when online in scope; then the
   server's player set. A lift leaves a tombstone, so a late copy cannot bring the ban back.
3. ``{msg}``: the ``ban``/``unban`` entry appended to every inbox in scope by
   ``messages.DELIVER`` itself, wrapped with a delivery marker so a retry appends nothing twice.
4. ``{bans}``: the outbox entry removed.

Steps 2 to 4 go in one pipeline, executed in that order (one round trip); when a step fails
the outbox entry is put back. The server's player set, an index read as a superset, is cleaned
last.

The worker (``shared.jobs.ban_outbox``) redoes steps 2-4 of any outbox entry older than
OUTBOX_AGE_MS, so a web process killed between the steps loses no push; it also prunes expired
bans from the index (a check ignores them anyway: expiry is judged at read time).
"""

from __future__ import annotations

import ipaddress
import json
import time
from typing import Any

import redis

from shared import events, keys, lua
from shared.addresses import embedded_ipv4, embedded_ipv4_network
from shared.config import Config
from shared.errors import Banned, InvalidInput
from shared.redis_conn import Lua, batch
from shared.storage import messages

# Widest ranges allowed without "force" (README "Moderation").
WIDEST = {4: 16, 6: 48}
OUTBOX_AGE_MS = 5000  # an outbox entry this old is taken for abandoned: the worker redoes it
DELIVERED_TTL = 7 * 86400  # seconds a delivery marker is kept
TOMBSTONE_MS = 86400 * 1000  # a lifted ban's tombstone in a player's copy is kept this long
BATCH = 200  # outbox entries or expired bans handled per worker script
EVENTS_TAG = "bans"  # the group whose outbox gets ban.created / ban.lifted (events.FIXED_TAGS)


def utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def refusal(ban: dict[str, Any]) -> Banned:
    """The 403 for a banned player: names the reason and the expiry."""
    until = f"until {utc(ban['expires_at'])}" if ban.get("expires_at") else "permanently"
    who = ban.get("player") or ban.get("ip")
    return Banned(f"{who} is banned {until}: {ban['reason']} (ban {ban['id']})")


# --- addresses ------------------------------------------------------------------------------
def network(text: str, field: str = "ip") -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An address or CIDR range as a network (host bits cleared; an IPv6 range that carries
    IPv4 addresses, mapped, compatible, NAT64, 6to4 or Teredo, as the IPv4 range:
    ``shared.addresses``), or InvalidInput naming ``field``."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise InvalidInput(field, "must be an IPv4 or IPv6 address or CIDR range") from None
    return embedded_ipv4_network(net) or net


def address(text: str, field: str = "ip") -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """One address (no range), or InvalidInput naming ``field``; an IPv6 address that carries
    an IPv4 one (``::ffff:a.b.c.d``, ``::a.b.c.d``, ``64:ff9b::/96``, ``2002::/16``, Teredo)
    is checked as that IPv4 address, so a ban on it or its range catches every form."""
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        raise InvalidInput(field, "must be an IPv4 or IPv6 address") from None
    return embedded_ipv4(addr) or addr


def too_wide(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return net.prefixlen < WIDEST[net.version]


def shown(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """How a ban shows its range: a single address without its prefix length."""
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


_FORMAT = {4: "n4:%08x/%d", 6: "n6:%032x/%d"}
# per IP version: the network mask of each prefix length
_MASKS = {v: [((1 << b) - 1) ^ ((1 << (b - n)) - 1) for n in range(b + 1)]
          for v, b in ((4, 32), (6, 128))}


def _field(version: int, value: int, length: int) -> str:
    """The index field of a network: its address as fixed-width hex, then the prefix length
    (cheaper to build than the address's text, up to 81 times per IPv6 check)."""
    return _FORMAT[version] % (value, length)


def net_field(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """A range's index field; every range wider than WIDEST (forced by the admin, few) shares
    one field per IP version, ``w4`` or ``w6``, whose bans a check tests one by one."""
    if too_wide(net):
        return f"w{net.version}"
    return _field(net.version, int(net.network_address), net.prefixlen)


def player_field(lname: str) -> str:
    return f"p:{lname}"


def candidates(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[str]:
    """The index fields of every range that could hold ``addr``: one per prefix length from
    WIDEST (17 for IPv4, 81 for IPv6), and the field of the wider ranges."""
    version, value = addr.version, int(addr)
    form, masks = _FORMAT[version], _MASKS[version]
    return [f"w{version}"] + [form % (value & masks[n], n)
                              for n in range(WIDEST[version], len(masks))]


def check_fields(lname: str | None, addr: Any) -> list[str]:
    return ([player_field(lname)] if lname else []) + (candidates(addr) if addr else [])


def queue_check(pipe: Any, fields: list[str]) -> None:
    """Queue the check's one command: the index entries of ``fields``."""
    pipe.hmget(keys.ban_index(), fields)


def applying(raws: list[str | None], scope: str | None, now: float,
             addr: Any = None) -> list[dict[str, Any]]:
    """The bans in index entries ``raws`` that are in force at ``now`` on server ``scope``
    (None: any scope), oldest first, each once. A wide range (from the ``w4``/``w6`` fields)
    counts only when it holds ``addr``."""
    found: dict[str, dict[str, Any]] = {}
    for raw in raws:
        for ban in json.loads(raw) if raw else ():
            if not applies(ban, now, scope):
                continue
            if ban.get("ip") and addr is not None and "/" in ban["ip"] \
                    and too_wide(net := ipaddress.ip_network(ban["ip"])) and addr not in net:
                continue  # a wide range that does not hold the address
            found[ban["id"]] = {k: ban.get(k) for k in FIELDS}
    return sorted(found.values(), key=lambda b: (b["at"], b["id"]))


def in_force(ban: dict[str, Any], now: float) -> bool:
    return not ban.get("expires_at") or ban["expires_at"] > now


def applies(ban: dict[str, Any], now: float, scope: str | None) -> bool:
    """In force at ``now`` on server ``scope`` (None: any scope): a global ban or its own."""
    return in_force(ban, now) and (scope is None or ban["scope"] in ("global", scope))


# Lua twin of :func:`in_force` and of the scope test of :func:`applying`: in_force(ban, now)
# for a decoded ban and now (s); applies(ban, now, scope): in force on server ``scope`` (a
# global ban or that server's own).
IN_FORCE = """
local function in_force(ban, now)
  return ban.expires_at == cjson.null or ban.expires_at == nil or ban.expires_at > now
end
local function applies(ban, now, scope)
  return in_force(ban, now) and (ban.scope == 'global' or ban.scope == scope)
end
"""


def check(r: Any, lname: str | None, addr: Any, scope: str | None,
          now: float) -> list[dict[str, Any]]:
    """The bans on player ``lname`` or address ``addr`` in force on ``scope``: one round trip."""
    fields = check_fields(lname, addr)
    return applying(r.hmget(keys.ban_index(), fields), scope, now, addr) if fields else []


# --- storing and lifting --------------------------------------------------------------------
# Index maintenance shared by the scripts: add(field, ban) appends to a field's list, dropping
# what expired; drop(field, id) removes one ban and the field when its list is empty.
_INDEX = IN_FORCE + """
local function keep(list, now, without)
  local out = {}
  for _, b in ipairs(list) do
    if b.id ~= without and in_force(b, now) then out[#out + 1] = b end
  end
  return out
end
local function save(idx, field, list)
  if #list == 0 then redis.call('HDEL', idx, field)
  else redis.call('HSET', idx, field, cjson.encode(list)) end
end
local function listed(idx, field)
  local raw = redis.call('HGET', idx, field)
  return raw and cjson.decode(raw) or {}
end
"""

# KEYS: ban, index, seq, all, expiring, pending pushes, player's history (any {bans} key if
# none), events outbox, the scope's bans, the scope's active bans, all active bans, the lists'
# ready marker. ARGV: ban JSON, id, index fields (space separated), expires_at ('' = never),
# now (s), now (ms), has player (1|0). Returns the sequence number; 0 if the id exists (then
# nothing is written, no event either). The first ban of a store marks the lists' indexes
# complete (there is nothing older to fill in).
STORE = Lua(events.LUA + _INDEX + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[4]) == 0 then redis.call('SET', KEYS[12], '1') end
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'seq', seq, 'fields', ARGV[3])
redis.call('ZADD', KEYS[4], seq, ARGV[2])
redis.call('ZADD', KEYS[9], seq, ARGV[2])
redis.call('ZADD', KEYS[10], seq, ARGV[2])
redis.call('ZADD', KEYS[11], seq, ARGV[2])
if ARGV[7] == '1' then redis.call('ZADD', KEYS[7], seq, ARGV[2]) end
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[5], ARGV[4], ARGV[2]) end
local ban, now = cjson.decode(ARGV[1]), tonumber(ARGV[5])
for field in string.gmatch(ARGV[3], '%S+') do
  local list = keep(listed(KEYS[2], field), now, ARGV[2])
  list[#list + 1] = ban
  save(KEYS[2], field, list)
end
redis.call('ZADD', KEYS[6], ARGV[6], 'ban:' .. ARGV[2])
emit(KEYS[8], 'ban.created', ARGV[1])
return seq""")

# KEYS: ban, index, expiring, pending pushes, events outbox, all active bans, the caller's
# moderation budget this minute (a server; any {bans} key otherwise). ARGV: id, now (s), now
# (ms), by, only scope ('' = any), reason ('' = none), a scope's active bans key around its
# scope, the budget (0 = none). Counts the call first (README "Abuse budgets"), then returns {-3}
# over the budget, {-1} unknown, {-2, json} other scope, {0, json} already lifted, {1, json} lifted;
# only the last writes the ban, ``ban.lifted`` included: the ban + lifted_at/_by, lift_reason.
LIFT = Lua(events.LUA + _INDEX + """
if ARGV[9] ~= '0' then
  local n = redis.call('INCR', KEYS[7])
  if n == 1 then redis.call('EXPIRE', KEYS[7], 120) end
  if n > tonumber(ARGV[9]) then return {-3} end
end
local b = redis.call('HMGET', KEYS[1], 'json', 'fields', 'lifted_at')
if not b[1] then return {-1} end
if ARGV[5] ~= '' and cjson.decode(b[1]).scope ~= ARGV[5] then return {-2, b[1]} end
if b[3] then return {0, b[1]} end
redis.call('HSET', KEYS[1], 'lifted_at', ARGV[2], 'lifted_by', ARGV[4], 'lift_reason', ARGV[6])
local now = tonumber(ARGV[2])
for field in string.gmatch(b[2] or '', '%S+') do
  save(KEYS[2], field, keep(listed(KEYS[2], field), now, ARGV[1]))
end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', ARGV[7] .. cjson.decode(b[1]).scope .. ARGV[8], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[3], 'unban:' .. ARGV[1])
local lifted = cjson.decode(b[1])
lifted.lifted_at, lifted.lifted_by = tonumber(ARGV[2]), ARGV[4]
lifted.lift_reason = ARGV[6] == '' and cjson.null or ARGV[6]
emit(KEYS[5], 'ban.lifted', cjson.encode(lifted))
return {1, b[1]}""")

# KEYS: index, expiring, all active bans. ARGV: now (s), batch, ban key prefix, a scope's
# active bans key around its scope. Drops expired bans from the index and the active lists;
# returns how many.
PRUNE = Lua(_INDEX + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local now = tonumber(ARGV[1])
for _, id in ipairs(ids) do
  local b = redis.call('HMGET', ARGV[3] .. id, 'fields', 'json')
  local fields = b[1] or ''
  redis.call('ZREM', KEYS[3], id)
  if b[2] then redis.call('ZREM', ARGV[4] .. cjson.decode(b[2]).scope .. ARGV[5], id) end
  for field in string.gmatch(fields, '%S+') do
    save(KEYS[1], field, keep(listed(KEYS[1], field), now, id))
  end
  redis.call('ZREM', KEYS[2], id)
end
return #ids""")

# KEYS: the player's ban copies, account. ARGV: id, ban JSON, scope, now (s), now (ms),
# tombstone age (ms), 1 to copy a ban / 0 to lift it. A lift leaves a tombstone ('-<ms>')
# that a late copy cannot overwrite; copies that expired and old tombstones are dropped.
# Returns the server the player was taken offline from, or false.
PLAYER = Lua(IN_FORCE + """
local now, now_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local raw = all[i + 1]
  if string.sub(raw, 1, 1) == '-' then
    if tonumber(string.sub(raw, 2)) < now_ms - tonumber(ARGV[6]) then
      redis.call('HDEL', KEYS[1], all[i])
    end
  elseif not in_force(cjson.decode(raw), now) then
    redis.call('HDEL', KEYS[1], all[i])
  end
end
if ARGV[7] == '0' then
  redis.call('HSET', KEYS[1], ARGV[1], '-' .. now_ms)
  return false
end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return false end
local server = redis.call('HGET', KEYS[2], 'server')
if server and (ARGV[3] == 'global' or ARGV[3] == server) then
  redis.call('HDEL', KEYS[2], 'server')
  redis.call('HSET', KEYS[2], 'last_seen', math.floor(now))
  return server
end
return false""")

# messages.DELIVER behind a delivery marker (``messages.ONCE``). KEYS: servers, id log,
# servers, marker. ARGV: marker TTL (ms), then DELIVER's ARGV. Returns DELIVER's answer, or
# false when the marker says it was done (or the target server is gone).
PUSH = Lua(messages.ONCE + """
if delivered(KEYS[4]) then return false end
local argv = {}
for i = 2, #ARGV do argv[#argv + 1] = ARGV[i] end
local got = deliver({KEYS[1], KEYS[2], KEYS[3]}, argv)
mark(KEYS[4], got and got[1] or '-', ARGV[1])
return got""")

# KEYS: the lists' ready marker, a history zset, then the index zsets to page through (one
# or two, read as one list: their union). Until the marker is set (an older store whose
# indexes the worker is still filling) the history is paged instead. ARGV: cursor (exclusive
# upper sequence number, '+inf' for none), limit, scopes allowed (space separated; '' =
# any), 1 = active only, now (s), ban key prefix. Looks at ``limit`` entries at most (the
# newest of each list below the cursor, merged): a page is never a scan, and may hold fewer
# than ``limit`` bans when some do not match. Returns {next cursor or '', {json, lifted_at,
# lifted_by}...}.
LIST = Lua(IN_FORCE + """
local limit = tonumber(ARGV[2])
local lists = {KEYS[2]}
if redis.call('EXISTS', KEYS[1]) == 1 then
  lists = {}
  for i = 3, #KEYS do lists[#lists + 1] = KEYS[i] end
end
local scopes = {}
for s in string.gmatch(ARGV[3], '%S+') do scopes[s] = true end
local now, out = tonumber(ARGV[5]), {''}
local top = ARGV[1] == '+inf' and '+inf' or '(' .. ARGV[1]
local seen = {}
for _, key in ipairs(lists) do
  local got = redis.call('ZREVRANGEBYSCORE', key, top, '-inf', 'WITHSCORES', 'LIMIT', 0, limit)
  for i = 1, #got, 2 do seen[#seen + 1] = {got[i], tonumber(got[i + 1])} end
end
table.sort(seen, function(a, b) return a[2] > b[2] end)
local n = math.min(limit, #seen)
for i = 1, n do
  local b = redis.call('HMGET', ARGV[6] .. seen[i][1], 'json', 'lifted_at', 'lifted_by')
  if b[1] then
    local ban = cjson.decode(b[1])
    local ok = ARGV[3] == '' or scopes[ban.scope]
    if ok and ARGV[4] == '1' then
      ok = not b[2] and in_force(ban, now)
    end
    if ok then out[#out + 1] = {b[1], b[2] or '', b[3] or ''} end
  end
end
if n > 0 then
  local below = '(' .. string.format('%d', seen[n][2])
  for _, key in ipairs(lists) do
    if #redis.call('ZREVRANGEBYSCORE', key, below, '-inf', 'LIMIT', 0, 1) > 0 then
      out[1] = string.format('%d', seen[n][2])
      break
    end
  end
end
return out""")

# KEYS: all bans, all active bans, the ready marker, the reindex cursor. ARGV: batch, ban key
# prefix, a scope's bans key around its scope, a scope's active bans key around its scope,
# now (s). Fills the list indexes of the next ``batch`` bans of an older store (idempotent);
# sets the marker once every ban is in. Returns how many bans it looked at.
REINDEX = Lua(IN_FORCE + """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local from = redis.call('GET', KEYS[4]) or '0'
local got = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. from, '+inf', 'WITHSCORES',
                       'LIMIT', 0, tonumber(ARGV[1]))
local now = tonumber(ARGV[7])
for i = 1, #got, 2 do
  local id, seq = got[i], got[i + 1]
  local b = redis.call('HMGET', ARGV[2] .. id, 'json', 'lifted_at')
  if b[1] then
    local ban = cjson.decode(b[1])
    redis.call('ZADD', ARGV[3] .. ban.scope .. ARGV[4], seq, id)
    if not b[2] and in_force(ban, now) then
      redis.call('ZADD', KEYS[2], seq, id)
      redis.call('ZADD', ARGV[5] .. ban.scope .. ARGV[6], seq, id)
    end
  end
  redis.call('SET', KEYS[4], seq)
end
if #got / 2 < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[3], '1')
  redis.call('DEL', KEYS[4])
end
return #got / 2""")

# KEYS: outbox, expiring, lock, all bans, the lists' ready marker. ARGV: oldest unfinished
# (ms), now (s), period (ms), owner. 1 when the worker job is due (an abandoned outbox entry,
# an expired ban, or list indexes of an older store to fill) and this caller won the period's
# lock. Writes nothing when nothing is due.
DUE = Lua(lua.DUE_THEN_LOCK + """
return due_then_lock(
  #redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1) > 0 or
  #redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, 1) > 0 or
  (redis.call('EXISTS', KEYS[5]) == 0 and redis.call('EXISTS', KEYS[4]) == 1),
  KEYS[3], ARGV[3], ARGV[4])""")

FIELDS = ("id", "player", "ip", "reason", "scope", "by", "at", "expires_at")


def new_ban(ban_id: str, player: str | None, net: Any, reason: str, scope: str, by: str,
            at: int, duration: int | None) -> dict[str, Any]:
    return {"id": ban_id, "player": player, "ip": shown(net) if net is not None else None,
            "reason": reason, "scope": scope, "by": by, "at": at,
            "expires_at": at + duration if duration else None}


def store(r: Any, ban: dict[str, Any], net: Any, now_ms: int, pipeline: Any = None) -> bool:
    """Step 1 of a ban: the ban, its index entries and its outbox entry. False if the id was
    taken. One round trip (queued on ``pipeline`` when given: then the caller executes it)."""
    lname = ban["player"].lower() if ban["player"] else None
    fields = [f for f in (player_field(lname) if lname else "",
                          net_field(net) if net is not None else "") if f]
    history = keys.bans_of_player(lname) if lname else keys.bans_all()
    got = STORE(r, [keys.ban(ban["id"]), keys.ban_index(), keys.ban_seq(), keys.bans_all(),
                    keys.bans_expiring(), keys.ban_outbox(), history,
                    keys.outbox(EVENTS_TAG), keys.bans_of_scope(ban["scope"]),
                    keys.bans_active(ban["scope"]), keys.bans_active(),
                    keys.bans_lists_ready()],
                [json.dumps(ban), ban["id"], " ".join(fields), ban["expires_at"] or "",
                 ban["at"], now_ms, 1 if lname else 0], pipeline=pipeline)
    return True if pipeline is not None else bool(got)


def lift(r: Any, ban_id: str, by: str, only_scope: str, now: float, reason: str,
         budget: int = 0) -> tuple[int, dict | None]:
    """Step 1 of a lift: (1 lifted | 0 already lifted | -1 unknown | -2 other scope | -3 over
    the moderation budget of server ``only_scope``, ban)."""
    counter = keys.moderation_budget(only_scope, int(now) // 60) if budget else keys.ban_seq()
    got = LIFT(r, [keys.ban(ban_id), keys.ban_index(), keys.bans_expiring(), keys.ban_outbox(),
                   keys.outbox(EVENTS_TAG), keys.bans_active(), counter],
               [ban_id, int(now), int(now * 1000), by, only_scope, reason,
                *keys.around(keys.bans_active(keys.HOLE)), budget])
    return int(got[0]), (json.loads(got[1]) if len(got) > 1 else None)


def announce(r: Any, config: Config, kind: str, ban: dict[str, Any], now: float,
             body: str | None = None, copy: bool = True) -> str | None:
    """Steps 2-4 of a ban (``kind`` "ban") or a lift ("unban"); each is idempotent, so the
    worker may redo them. Returns the server a banned player was taken offline from. One round
    trip (two when a player goes offline)."""
    lname = ban["player"].lower() if ban["player"] and copy else None
    global_ = ban["scope"] == "global"
    to = "*" if global_ else ban["scope"]
    data = {"from": "", "to": to, "type": kind,
            "body": body if body is not None else ban["reason"], "at": now, "ban": ban}
    push = (PUSH, [keys.servers_all(), keys.message_ids(), keys.servers_all(),
                   keys.delivered(f"{kind}:{ban['id']}")],
            [DELIVERED_TTL * 1000, "all" if global_ else "server", "" if global_ else to, "", kind,
             json.dumps(data, ensure_ascii=False), config.message_hard_cap, keys.inbox_prefix(),
             config.message_keep_count, config.message_keep_seconds, messages.TRIM_STEP])
    member = f"{kind}:{ban['id']}"
    steps: list[Any] = [push, lambda pipe: pipe.zrem(keys.ban_outbox(), member)]
    if lname:
        steps.insert(0, (PLAYER, [keys.player_bans(lname), keys.player(lname)],
                         [ban["id"], json.dumps(ban), ban["scope"], int(now), int(now * 1000),
                          TOMBSTONE_MS, 1 if kind == "ban" else 0]))
    try:  # in order, in one round trip: the outbox entry goes once the others are done
        done = batch(r, *steps)
    except redis.RedisError:
        # a step failed after the outbox entry went: put it back for the worker
        r.zadd(keys.ban_outbox(), {member: int(now * 1000) - OUTBOX_AGE_MS})
        raise
    offline = done[0] if lname else None
    if offline:  # the server's player set is an index (a superset): cleaned after
        r.srem(keys.server_players(offline), lname)
    return offline or None


def lift_body(ban: dict[str, Any], reason: str | None) -> str:
    return reason or f"ban {ban['id']} lifted"


def page(r: Any, history: str, lists: list[str], cursor: str | None, limit: int,
         scopes: tuple[str, ...], active: bool, now: float
         ) -> tuple[list[dict[str, Any]], str | None]:
    """Bans of the index zsets ``lists`` (their union; ``history`` until the indexes are
    ready), newest first, filtered; (bans, next cursor). One round trip, at most ``limit``
    bans looked at."""
    got = LIST(r, [keys.bans_lists_ready(), history, *lists],
               [cursor or "+inf", limit, " ".join(scopes), 1 if active else 0, now,
                keys.ban("")])
    out = []
    for raw, lifted_at, lifted_by in got[1:]:
        ban = json.loads(raw)
        lifted = int(lifted_at) if lifted_at else None
        out.append({**ban, "active": lifted is None and in_force(ban, now),
                    "lifted_at": lifted, "lifted_by": lifted_by or None})
    return out, got[0] or None


def lists_for(player: str | None, scope: str | None, active: bool) -> tuple[str, list[str]]:
    """(history, index zsets) ``ban.list`` pages through: a player's bans (few), or the bans
    of every scope (the admin, ``scope`` None) or of ``global`` and ``scope`` (a server), all
    or only the active ones."""
    if player:
        history = keys.bans_of_player(player.lower())
        return history, [history]
    if scope is None:
        return keys.bans_all(), [keys.bans_active() if active else keys.bans_all()]
    of = keys.bans_active if active else keys.bans_of_scope
    return keys.bans_all(), [of("global"), of(scope)]


# --- the worker's side ------------------------------------------------------------------------
def due(r: Any, owner: str, now_ms: int, period_ms: int) -> bool:
    """Whether the ban outbox job should be queued now (one round trip, no write when idle)."""
    return DUE(r, [keys.ban_outbox(), keys.bans_expiring(), keys.ban_job_lock(), keys.bans_all(),
                   keys.bans_lists_ready()],
               [now_ms - OUTBOX_AGE_MS, now_ms // 1000, period_ms, owner]) == 1


def redeliver(r: Any, config: Config, now: float) -> int:
    """Redo steps 2-4 of every outbox entry older than OUTBOX_AGE_MS; returns how many."""
    old = r.zrangebyscore(keys.ban_outbox(), "-inf", int(now * 1000) - OUTBOX_AGE_MS,
                          start=0, num=BATCH)
    for member in old:
        kind, _, ban_id = member.partition(":")
        raw, lifted, why = r.hmget(keys.ban(ban_id), "json", "lifted_at", "lift_reason")
        if raw is None:
            r.zrem(keys.ban_outbox(), member)
            continue
        ban = json.loads(raw)
        # a ban lifted since: push it (the unban follows), but copy nothing to the player
        announce(r, config, kind, ban, now, lift_body(ban, why) if kind == "unban" else None,
                 copy=kind == "unban" or not lifted)
    return len(old)


def prune(r: Any, now: float) -> int:
    """Drop expired bans from the index (a check already ignores them); returns how many."""
    return int(PRUNE(r, [keys.ban_index(), keys.bans_expiring(), keys.bans_active()],
                     [int(now), BATCH, keys.ban(""), *keys.around(keys.bans_active(keys.HOLE))]))


def reindex(r: Any, now: float) -> int:
    """Fill the ``ban.list`` indexes of the bans of a store older than them, BATCH bans per
    script, until done (then the ready marker is set); returns how many bans were looked at."""
    n = 0
    while True:
        got = int(REINDEX(r, [keys.bans_all(), keys.bans_active(), keys.bans_lists_ready(),
                              keys.bans_reindex_cursor()],
                          [BATCH, keys.ban(""), *keys.around(keys.bans_of_scope(keys.HOLE)),
                           *keys.around(keys.bans_active(keys.HOLE)), int(now)]))
        n += got
        if got < BATCH:
            return n
