--[[ ssmglobal.lua: the SSMGlobal client for the (server)² Modification's Lua (5.1 + LuaSocket).

One file, no other dependency than LuaSocket: drop it into the mod's lua folder and
`local ssm = require("ssmglobal")`. It speaks the relay's line protocol (SERVER mode) over one
non-blocking TCP connection. Nothing here blocks except `ssm.connect`, which resolves the host
name once; everything else happens in `client:poll()`, which the mod calls from its timer and
which returns within its time budget (default 2 ms). See README.md next to this file.

    local c = assert(ssm.connect{host = "ssm.example.org", port = 53450,
                                 server_id = "...", key = "s...."})
    c:on("message", function(push) print(push.data.from, push.data.body) end)
    c:heartbeat({name = "My CTF", ...}, function(ok, data_or_err) end)
    -- every tick:  c:poll()

MIT licence, (c) the SSMGlobal authors.
]]

local socket = require("socket")

local M = { _VERSION = "ssmglobal 1.0" }

local floor, max, min = math.floor, math.max, math.min
local concat, insert, remove = table.concat, table.insert, table.remove
local byte, char, format, sub, find = string.byte, string.char, string.format, string.sub,
    string.find

-- =============================================================================================
-- JSON (small, pure Lua 5.1): objects and arrays are tables; null decodes to nil.
-- An empty table encodes as {} unless marked with json.array(t) (decoded arrays are marked).
-- =============================================================================================
local json = {}
M.json = json

local array_mt = { __jsontype = "array" }
json.null = setmetatable({}, { __tostring = function() return "null" end })

function json.array(t)
  return setmetatable(t or {}, array_mt)
end

local escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}
local function escape_char(c)
  return escapes[c] or format("\\u%04x", byte(c))
end

local function is_array(t)
  local mt = getmetatable(t)
  if mt == array_mt then return true end
  local n, count = 0, 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k ~= floor(k) then return false end
    if k > n then n = k end
    count = count + 1
  end
  return count > 0 and n == count
end

local encode_into
encode_into = function(v, out, depth)
  local t = type(v)
  if v == nil or v == json.null then
    out[#out + 1] = "null"
  elseif t == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      error("json: cannot encode " .. tostring(v))
    end
    if v == floor(v) and v > -1e15 and v < 1e15 then
      out[#out + 1] = format("%d", v)
    else
      out[#out + 1] = format("%.17g", v)
    end
  elseif t == "string" then
    out[#out + 1] = '"' .. (v:gsub('[%c"\\]', escape_char)) .. '"'
  elseif t == "table" then
    if depth > 64 then error("json: nested too deeply") end
    if is_array(v) then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode_into(v[i], out, depth + 1)
      end
      out[#out + 1] = "]"
    else
      out[#out + 1] = "{"
      local first = true
      for k, val in pairs(v) do
        if type(k) ~= "string" and type(k) ~= "number" then
          error("json: object keys must be strings")
        end
        if not first then out[#out + 1] = "," end
        first = false
        encode_into(tostring(k), out, depth + 1)
        out[#out + 1] = ":"
        encode_into(val, out, depth + 1)
      end
      out[#out + 1] = "}"
    end
  else
    error("json: cannot encode a " .. t)
  end
end

function json.encode(v)
  local out = {}
  encode_into(v, out, 0)
  return concat(out)
end

local function utf8_char(code)
  if code < 0x80 then return char(code) end
  if code < 0x800 then
    return char(0xC0 + floor(code / 0x40), 0x80 + code % 0x40)
  end
  if code < 0x10000 then
    return char(0xE0 + floor(code / 0x1000), 0x80 + floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
  end
  return char(0xF0 + floor(code / 0x40000), 0x80 + floor(code / 0x1000) % 0x40,
              0x80 + floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
end

local unescapes = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t",
                    ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }

local function decode_error(s, i, what)
  error(format("json: %s at byte %d", what, i), 0)
end

local function skip_ws(s, i)
  return find(s, "[^ \t\r\n]", i) or #s + 1
end

local function decode_string(s, i) -- s[i] is the opening quote
  local parts, n, j = {}, 0, i + 1
  while true do
    local a = find(s, '["\\]', j)
    if not a then decode_error(s, i, "unterminated string") end
    if a > j then n = n + 1; parts[n] = sub(s, j, a - 1) end
    if byte(s, a) == 34 then return concat(parts), a + 1 end
    local c = sub(s, a + 1, a + 1)
    if c == "u" then
      local hex = sub(s, a + 2, a + 5)
      if not find(hex, "^%x%x%x%x$") then decode_error(s, a, "bad \\u escape") end
      local code = tonumber(hex, 16)
      j = a + 6
      if code >= 0xD800 and code <= 0xDBFF and sub(s, j, j + 1) == "\\u" then
        local low = tonumber(sub(s, j + 2, j + 5), 16)
        if low and low >= 0xDC00 and low <= 0xDFFF then
          code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
          j = j + 6
        end
      end
      n = n + 1; parts[n] = utf8_char(code)
    else
      local u = unescapes[c]
      if not u then decode_error(s, a, "bad escape") end
      n = n + 1; parts[n] = u
      j = a + 2
    end
  end
end

local decode_value
decode_value = function(s, i, depth)
  if depth > 64 then decode_error(s, i, "nested too deeply") end
  i = skip_ws(s, i)
  local c = byte(s, i)
  if c == 34 then return decode_string(s, i) end
  if c == 123 then -- {
    local obj = {}
    i = skip_ws(s, i + 1)
    if byte(s, i) == 125 then return obj, i + 1 end
    while true do
      if byte(s, i) ~= 34 then decode_error(s, i, "expected a key") end
      local k
      k, i = decode_string(s, i)
      i = skip_ws(s, i)
      if byte(s, i) ~= 58 then decode_error(s, i, "expected ':'") end
      obj[k], i = decode_value(s, i + 1, depth + 1)
      i = skip_ws(s, i)
      c = byte(s, i)
      if c == 125 then return obj, i + 1 end
      if c ~= 44 then decode_error(s, i, "expected ',' or '}'") end
      i = skip_ws(s, i + 1)
    end
  end
  if c == 91 then -- [
    local arr, n = json.array({}), 0
    i = skip_ws(s, i + 1)
    if byte(s, i) == 93 then return arr, i + 1 end
    while true do
      n = n + 1
      arr[n], i = decode_value(s, i, depth + 1)
      i = skip_ws(s, i)
      c = byte(s, i)
      if c == 93 then return arr, i + 1 end
      if c ~= 44 then decode_error(s, i, "expected ',' or ']'") end
      i = i + 1
    end
  end
  local word = sub(s, i, i + 4)
  if sub(word, 1, 4) == "true" then return true, i + 4 end
  if word == "false" then return false, i + 5 end
  if sub(word, 1, 4) == "null" then return nil, i + 4 end
  local a, b = find(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", i)
  if a then
    local num = tonumber(sub(s, a, b))
    if num then return num, b + 1 end
  end
  decode_error(s, i, "unexpected character")
end

--- Decode one JSON text; raises an error on malformed input (use pcall).
function json.decode(s)
  local v, i = decode_value(s, 1, 0)
  i = skip_ws(s, i)
  if i <= #s then decode_error(s, i, "trailing characters") end
  return v
end

-- =============================================================================================
-- Stream ids ("<ms>-<seq>") compare numerically: both parts fit a Lua number exactly.
-- =============================================================================================
local function id_parts(id)
  local ms, seq = string.match(tostring(id), "^(%d+)%-?(%d*)$")
  return tonumber(ms) or 0, tonumber(seq) or 0
end

local function id_cmp(a, b)
  local am, as = id_parts(a)
  local bm, bs = id_parts(b)
  if am ~= bm then return am < bm and -1 or 1 end
  if as ~= bs then return as < bs and -1 or 1 end
  return 0
end
M.compare_ids = id_cmp

-- =============================================================================================
-- A double-ended queue (calls waiting to be sent).
-- =============================================================================================
local Deque = {}
Deque.__index = Deque
local function deque() return setmetatable({ first = 1, last = 0 }, Deque) end
function Deque:size() return self.last - self.first + 1 end
function Deque:push(v) self.last = self.last + 1; self[self.last] = v end
function Deque:unshift(v) self.first = self.first - 1; self[self.first] = v end
function Deque:peek() if self.first <= self.last then return self[self.first] end end
function Deque:shift()
  if self.first > self.last then return nil end
  local v = self[self.first]
  self[self.first] = nil
  self.first = self.first + 1
  return v
end

-- =============================================================================================
-- Ban cache: the bans this server has seen (ban.check answers, ban/unban pushes), so that it
-- keeps enforcing them while the backend is unreachable. Expiry is checked at read time.
-- =============================================================================================
local function parse_ipv4(s)
  local a, b, c, d = string.match(s, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  if a > 255 or b > 255 or c > 255 or d > 255 then return nil end
  return { a * 256 + b, c * 256 + d } -- two 16-bit groups
end

local function parse_ipv6(s)
  if not find(s, ":") then return nil end
  local head, tail = s, nil
  local dbl = find(s, "::", 1, true)
  if dbl then head, tail = sub(s, 1, dbl - 1), sub(s, dbl + 2) end
  local function groups(part)
    local out = {}
    if part == "" then return out end
    for g in string.gmatch(part .. ":", "([^:]*):") do
      if find(g, "%.") then -- embedded IPv4 tail
        local v4 = parse_ipv4(g)
        if not v4 then return nil end
        out[#out + 1], out[#out + 2] = v4[1], v4[2]
      else
        if not find(g, "^%x%x?%x?%x?$") then return nil end
        out[#out + 1] = tonumber(g, 16)
      end
    end
    return out
  end
  local h, t = groups(head), tail and groups(tail) or {}
  if not h or not t then return nil end
  local fill = 8 - #h - #t
  if (tail and fill < 1) or (not tail and fill ~= 0) then return nil end
  local out = {}
  for i = 1, #h do out[#out + 1] = h[i] end
  for _ = 1, fill do out[#out + 1] = 0 end
  for i = 1, #t do out[#out + 1] = t[i] end
  return out
end

--- An address or CIDR range as {groups (16-bit numbers), prefix bits}; nil when malformed.
local function parse_net(s)
  if type(s) ~= "string" then return nil end
  local addr, bits = string.match(s, "^([^/]+)/(%d+)$")
  addr = addr or s
  local groups = parse_ipv4(addr) or parse_ipv6(addr)
  if not groups then return nil end
  local width = #groups * 16
  bits = bits and tonumber(bits) or width
  if bits > width then return nil end
  return { groups = groups, bits = bits }
end

local function net_contains(net, groups)
  if #groups ~= #net.groups then return false end
  local left = net.bits
  for i = 1, #groups do
    if left <= 0 then return true end
    if left >= 16 then
      if groups[i] ~= net.groups[i] then return false end
    else
      local div = 2 ^ (16 - left)
      if floor(groups[i] / div) ~= floor(net.groups[i] / div) then return false end
    end
    left = left - 16
  end
  return true
end

local BanCache = {}
BanCache.__index = BanCache

--- The key of a network's first `bits` bits: "<groups>/<bits>/<masked groups>".
local function net_key(groups, bits)
  local out, left = { #groups, "/", bits }, bits
  for i = 1, #groups do
    local g = groups[i]
    if left <= 0 then
      g = 0
    elseif left < 16 then
      local div = 2 ^ (16 - left)
      g = floor(g / div) * div
    end
    out[#out + 1] = ":"
    out[#out + 1] = g
    left = left - 16
  end
  return concat(out)
end

--- A ban cache; `clock()` gives the time in seconds (the backend's `expires_at` scale). It holds at
--- most `max` bans (default 20,000; past it the oldest learnt is forgotten) in indexes by player
--- name and by network, so a check costs the same whatever the number of bans: one lookup for
--- the name, and one per prefix length in use for the address (at most 33 for IPv4, 129 for IPv6).
function M.ban_cache(clock, max)
  return setmetatable({ bans = {}, clock = clock or os.time, max = max or 20000, n = 0,
                        by_player = {}, by_net = {}, lens = {}, order = deque() }, BanCache)
end

function BanCache:active(ban, now)
  if ban.lifted or ban.lifted_at then return false end
  local exp = ban.expires_at
  return not (type(exp) == "number" and exp <= (now or self.clock()))
end

function BanCache:applies(ban, player, ip_groups)
  if player and type(ban.player) == "string" and ban.player:lower() == player:lower() then
    return true
  end
  if ip_groups and ban.ip then
    local net = ban._net or parse_net(ban.ip)
    ban._net = net or false
    if net and net_contains(net, ip_groups) then return true end
  end
  return false
end

local function index_add(index, key, id)
  local set = index[key]
  if not set then set = {}; index[key] = set end
  set[id] = true
end

local function index_del(index, key, id)
  local set = index[key]
  if set then
    set[id] = nil
    if next(set) == nil then index[key] = nil end
  end
end

function BanCache:_keys(ban)
  local pkey = type(ban.player) == "string" and ban.player:lower() or nil
  local net = ban.ip and parse_net(ban.ip) or nil
  ban._net = net or false
  return pkey, net and net_key(net.groups, net.bits), net
end

--- Remember a ban (from a `ban` push or a ban.check answer). Needs an `id`.
function BanCache:add(ban)
  if type(ban) ~= "table" or ban.id == nil then return end
  local id = tostring(ban.id)
  if self.bans[id] then self:lift(id) end
  local pkey, nkey, net = self:_keys(ban)
  self.bans[id] = ban
  self.n = self.n + 1
  if pkey then index_add(self.by_player, pkey, id) end
  if nkey then
    index_add(self.by_net, nkey, id)
    local fam = #net.groups
    local lens = self.lens[fam] or {}
    self.lens[fam] = lens
    lens[net.bits] = (lens[net.bits] or 0) + 1
  end
  self.order:push(id)
  while self.n > self.max do -- forget the oldest learnt (ids lifted since are skipped)
    local old = self.order:shift()
    if old == nil then break end
    if self.bans[old] then self:lift(old) end
  end
  -- the order queue keeps lifted ids until they reach its front: compact it when it is mostly
  -- such leftovers, so that it stays within a small multiple of the bound
  if self.order:size() > 2 * self.max + 64 then
    local kept = deque()
    local e = self.order:shift()
    while e do
      if self.bans[e] then kept:push(e) end
      e = self.order:shift()
    end
    self.order = kept
  end
end

--- Forget a ban (from an `unban` push, or a ban.check answer that no longer lists it).
function BanCache:lift(id)
  if id == nil then return end
  id = tostring(id)
  local ban = self.bans[id]
  if not ban then return end
  self.bans[id] = nil
  self.n = self.n - 1
  local pkey, nkey, net = self:_keys(ban)
  if pkey then index_del(self.by_player, pkey, id) end
  if nkey then
    index_del(self.by_net, nkey, id)
    local lens = self.lens[#net.groups]
    lens[net.bits] = lens[net.bits] - 1
    if lens[net.bits] <= 0 then lens[net.bits] = nil end
  end
end

--- The ids of the cached bans naming `player` or covering the address `groups`.
function BanCache:_candidates(player, groups)
  local ids = {}
  if player then
    for id in pairs(self.by_player[player:lower()] or {}) do ids[id] = true end
  end
  if groups then
    for bits in pairs(self.lens[#groups] or {}) do
      for id in pairs(self.by_net[net_key(groups, bits)] or {}) do ids[id] = true end
    end
  end
  return ids
end

--- Learn from a ban.check answer for (player, ip): its bans are current, and any cached ban
--- for the same player or address that it does not list has been lifted since.
function BanCache:learn(answer, player, ip)
  if type(answer) ~= "table" then return end
  local listed = {}
  for _, ban in ipairs(answer.bans or {}) do
    if type(ban) == "table" and ban.id ~= nil then
      listed[tostring(ban.id)] = true
      self:add(ban)
    end
  end
  local groups = ip and (parse_ipv4(ip) or parse_ipv6(ip))
  for id in pairs(self:_candidates(player, groups)) do
    if not listed[id] then self:lift(id) end
  end
end

--- {banned, bans} from what the cache knows, for a player name and/or an address.
function BanCache:check(player, ip)
  local now = self.clock()
  local groups = ip and (parse_ipv4(ip) or parse_ipv6(ip))
  local found = json.array({})
  for id in pairs(self:_candidates(player, groups)) do
    local ban = self.bans[id]
    if not self:active(ban, now) then
      self:lift(id) -- expired: it never applies again
    else
      found[#found + 1] = ban
    end
  end
  return { banned = #found > 0, bans = found, cached = true }
end

function BanCache:count()
  return self.n
end

-- =============================================================================================
-- The client
-- =============================================================================================
-- Operations that only read: made while disconnected they fail at once ("disconnected") instead
-- of waiting in the outbox. Every other operation is a write: it is queued while disconnected,
-- carries an idempotency key, and is sent again after a reconnect if its answer never came.
local READS = {}
for _, op in ipairs({
  "player.get", "player.settings.get", "server.settings.get", "status.list", "status.get",
  "record.top", "record.player", "record.of_player", "message.read", "mail.list", "mail.read",
  "mail.unread_count", "board.list", "season.list", "season.records", "ban.list",
  "ban.check", "name.check", "clan.get", "audit.list", "webhook.list", "webhook.deliveries",
  "server.list", "mod.build.list", "mail.blocked", "session.list", "player.export",
}) do READS[op] = true end
M.READS = READS

-- Error codes after which a write is sent again (same idempotency key) instead of failing.
local RETRY_CODES = { unavailable = true, request_in_progress = true }
local GREETING = "CONNECTED serversquaredGlobal"
local CLOSING = { ["Idle timeout."] = true, ["Server shutting down."] = true }

local DEFAULTS = {
  port = 53450,
  budget_ms = 2,            -- longest a poll() works
  outbox_max = 1000,        -- calls waiting to be sent; the oldest is dropped past this
  max_inflight = 32,        -- calls sent and not yet answered
  keepalive_s = 30,         -- send a keepalive after this long without sending anything
  reply_timeout_s = 15,     -- a connection whose oldest call waits this long is dead
  connect_timeout_s = 5,    -- TCP connect
  handshake_timeout_s = 10, -- greeting + MODE + AUTH
  backoff_min_s = 0.5,
  backoff_max_s = 5,
  retry_for_s = 120,        -- how long a write answered `unavailable` keeps being retried
  seen_max = 4096,          -- push ids remembered to drop a duplicate
  line_max = 1048576,       -- a longer line from the relay drops the connection
  ban_cache_max = 20000,    -- bans kept in memory; past it the oldest learnt is forgotten
}

local Client = {}
Client.__index = Client
M.Client = Client

local boot_counter = 0
local function boot_id(clock)
  boot_counter = boot_counter + 1
  local addr = string.match(tostring({}), "0x(%x+)") or "0"
  return format("%x%s%x", floor(clock() * 1000) % 0x10000000000, sub(addr, -6), boot_counter)
end

local function resolve(host)
  if parse_ipv4(host) or parse_ipv6(host) then return host end
  local ip, err = socket.dns.toip(host)
  if ip then return ip end
  if socket.dns.getaddrinfo then
    local infos = socket.dns.getaddrinfo(host)
    if infos then
      for _, info in ipairs(infos) do
        if info.addr then return info.addr end
      end
    end
  end
  return nil, err or "cannot resolve"
end

--- Create a client; returns at once (connecting happens in poll()). The only blocking step is
--- resolving `host` here. Returns nil, error when an option is missing or the host is unknown.
function M.connect(opts)
  if type(opts) ~= "table" then return nil, "connect: options table expected" end
  for _, name in ipairs({ "host", "server_id", "key" }) do
    if type(opts[name]) ~= "string" or opts[name] == "" then
      return nil, "connect: " .. name .. " is required"
    end
  end
  local cfg = {}
  for k, v in pairs(DEFAULTS) do cfg[k] = v end
  for k, v in pairs(opts) do cfg[k] = v end
  local ip, err = resolve(opts.host)
  if not ip then return nil, "connect: cannot resolve " .. opts.host .. ": " .. tostring(err) end
  local clock = opts.clock or socket.gettime
  local self = setmetatable({
    cfg = cfg,
    ip = ip,
    port = tonumber(cfg.port),
    clock = clock,
    tcp = opts.tcp or (find(ip, ":") and socket.tcp6 or socket.tcp),
    log = opts.log or function() end,
    state = "wait",    -- wait | connecting | handshake | ready | closed | failed
    next_try = 0,      -- when state == wait: the time of the next attempt
    backoff = cfg.backoff_min_s,
    queue = deque(),   -- calls not sent yet
    inflight = {},     -- calls sent, oldest first, answers pending
    out = {},          -- lines to write, joined into `chunk` when it is drained
    chunk = "",
    chunk_pos = 1,
    inbuf = "",
    handlers = {},
    deferred = deque(), -- callbacks to run from poll()
    retries = {},       -- writes to send again at a time
    seq = 0,
    key_prefix = "lua-" .. boot_id(clock),
    safe_id = opts.resume_from, -- resume point: every push up to it was handled
    seen = {}, seen_ring = {}, seen_pos = 0,
    bans = M.ban_cache(opts.wall_clock or os.time, cfg.ban_cache_max),
    stats = { connects = 0, disconnects = 0, dropped = 0, pushes = 0, duplicates = 0,
              sent = 0, resent = 0, keepalives = 0, too_long = 0 },
  }, Client)
  return self
end

-- --- public surface -------------------------------------------------------------------------
function Client:connected()
  return self.state == "ready"
end

--- Register a handler for a push event ("message", "mail", "ban", "unban", "server_offline",
--- or "*" for every push), or for the client's own "connected" / "disconnected" (reason).
function Client:on(event, fn)
  local list = self.handlers[event]
  if not list then list = {}; self.handlers[event] = list end
  list[#list + 1] = fn
  return self
end

--- The resume point: every push up to this stream id was handled. Persist it and pass it back
--- as `resume_from` to miss nothing across a restart of the mod itself.
function Client:last_push_id()
  return self.safe_id
end

function Client:ban_cache()
  return self.bans
end

--- Call an operation by its registry name. `callback(true, data)` or
--- `callback(false, message, code)`. `options.idempotency_key` overrides the generated key;
--- `options.as` is a player's session token: that one command runs as that player (the
--- connection keeps its own identity). The token goes on the wire only, never into a log.
function Client:call(op, args, callback, options)
  if type(op) ~= "string" or op == "" then error("call: operation name expected", 2) end
  local write = not READS[op:lower()]
  if options and options.write ~= nil then write = options.write end
  local entry = { op = op, args = args, cb = callback, write = write, made = self.clock(),
                  as = options and options.as or nil }
  if write then
    self.seq = self.seq + 1
    entry.key = options and options.idempotency_key or (self.key_prefix .. "-" .. self.seq)
  end
  if self.state == "closed" or self.state == "failed" then
    self:_fail(entry, self.state == "closed" and "closed" or self.error, self.state)
  elseif not write and self.state ~= "ready" then
    self:_fail(entry, "disconnected", "disconnected")
  else
    self.queue:push(entry)
    self:_trim_queue()
    if self.state == "ready" then self:_pump() end
  end
  return entry
end

--- Stop: the connection is closed, queued and pending calls fail with "closed".
function Client:close()
  if self.state == "closed" then return end
  self:_drop("closed", true)
  self.state = "closed"
  local e = self.queue:shift()
  while e do self:_fail(e, "closed", "closed"); e = self.queue:shift() end
  for _, r in ipairs(self.retries) do self:_fail(r.entry, "closed", "closed") end
  self.retries = {}
  self:_run_deferred(math.huge)
end

-- --- friendly wrappers ---------------------------------------------------------------------
local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

--- Heartbeat (status.update): status = {name, host, port, map, mode, players = {names},
--- max_players, version, public}.
function Client:heartbeat(status, cb)
  local args = copy(status)
  args.id = self.cfg.server_id
  args.players = json.array(copy(args.players))
  return self:call("status.update", args, cb)
end

--- A player joins with their session token (presence.join); `ip` is optional.
function Client:join(token, ip, cb)
  return self:call("presence.join", { id = self.cfg.server_id, token = token, ip = ip }, cb)
end

function Client:leave(name, cb)
  return self:call("presence.leave", { id = self.cfg.server_id, name = name }, cb)
end

--- record.submit; `meta` may be nil.
function Client:submit(board, player, score, meta, cb)
  return self:call("record.submit", { board = board, player = player, score = score,
                                      meta = meta }, cb)
end

--- message.send to a server id, "*" (every server) or "#channel"; `type` may be nil.
function Client:send_message(to, body, type_, cb)
  return self:call("message.send", { to = to, body = body, type = type_ }, cb)
end

--- mail.send for a player online on this server (`from`) to a player (`to`).
function Client:send_mail(from, to, body, subject, cb)
  return self:call("mail.send", { ["from"] = from, to = to, body = body, subject = subject }, cb)
end

--- ban.check for a player name and/or an address. Answers are cached; while the backend is
--- unreachable (or answers `unavailable`) the answer comes from the cache, with `cached = true`.
function Client:check_ban(player, ip, cb)
  local bans = self.bans
  local function fallback()
    if cb then self:_defer(cb, true, bans:check(player, ip)) end
  end
  if self.state ~= "ready" then
    fallback()
    return nil
  end
  return self:call("ban.check", { player = player, ip = ip }, function(ok, data, code)
    if ok then
      bans:learn(data, player, ip)
      if cb then cb(true, data) end
    elseif code == "unavailable" or code == "disconnected" then
      local answer = bans:check(player, ip)
      if cb then cb(true, answer) end
    elseif cb then
      cb(false, data, code)
    end
  end)
end

--- name.check for a nickname about to be used here, by `player` (a registered name) or nil.
function Client:check_name(nick, player, cb)
  return self:call("name.check", { nick = nick, player = player }, cb)
end

-- --- the poll loop --------------------------------------------------------------------------
--- Do what is due, within the time budget: connect, read, dispatch, write, time out.
function Client:poll()
  local now = self.clock()
  local deadline = now + self.cfg.budget_ms / 1000
  local state = self.state
  if state == "closed" or state == "failed" then
    self:_run_deferred(deadline)
    return
  end
  if state == "wait" then
    if now >= self.next_try then self:_open(now) end
  elseif state == "connecting" then
    self:_check_connect(now)
  end
  if self.sock and (self.state == "handshake" or self.state == "ready") then
    self:_read(deadline)
    self:_lines(deadline)
    if self.sock then self:_timers(self.clock()) end
  end
  if self.state == "ready" then self:_due_retries(self.clock()) end
  if self.sock then self:_write() end
  self:_run_deferred(deadline)
end

-- --- connection ------------------------------------------------------------------------------
function Client:_open(now)
  local sock, err = self.tcp()
  if not sock then return self:_schedule(now, "socket: " .. tostring(err)) end
  sock:settimeout(0)
  self.sock, self.opened = sock, now
  self.state = "connecting"
  local ok, cerr = sock:connect(self.ip, self.port)
  if ok or cerr == "already connected" then
    self:_tcp_up(now)
  elseif cerr ~= "timeout" and cerr ~= "Operation already in progress" then
    self:_drop("connect: " .. tostring(cerr))
  end
end

function Client:_check_connect(now)
  local ok, err = self.sock:connect(self.ip, self.port)
  if ok or err == "already connected" then
    self:_tcp_up(now)
  elseif err == "timeout" or err == "Operation already in progress" then
    if now - self.opened > self.cfg.connect_timeout_s then self:_drop("connect timed out") end
  else
    self:_drop("connect: " .. tostring(err))
  end
end

function Client:_tcp_up(now)
  self.state = "handshake"
  self.greeted, self.closing, self.eof, self.eof_reason = false, nil, false, nil
  self.inbuf, self.out, self.chunk, self.chunk_pos = "", {}, "", 1
  self.last_send = now
end

function Client:_schedule(now, reason)
  self.state = "wait"
  self.next_try = now + self.backoff
  self.log("info", format("ssmglobal: %s; reconnecting in %.1f s", reason, self.backoff))
  self.backoff = min(self.backoff * 2, self.cfg.backoff_max_s)
end

--- Close the socket. In-flight writes go back to the front of the queue (same idempotency
--- key), in-flight reads and reads still queued fail with "disconnected".
function Client:_drop(reason, final)
  local was_ready = self.state == "ready"
  if self.sock then self.sock:close() end
  self.sock = nil
  self.inbuf, self.out, self.chunk, self.chunk_pos = "", {}, "", 1
  local inflight = self.inflight
  self.inflight = {}
  for i = #inflight, 1, -1 do
    local e = inflight[i]
    if e.internal then -- MODE, AUTH, RESUME, keepalive: nothing to keep
    elseif e.write then
      e.resent = true
      self.queue:unshift(e)
    else
      self:_fail(e, "disconnected", "disconnected")
    end
  end
  local kept = deque()
  local e = self.queue:shift()
  while e do
    if e.write then kept:push(e) else self:_fail(e, "disconnected", "disconnected") end
    e = self.queue:shift()
  end
  self.queue = kept
  self:_trim_queue()
  if was_ready then
    self.stats.disconnects = self.stats.disconnects + 1
    self:_emit("disconnected", reason)
  end
  if not final then self:_schedule(self.clock(), reason) end
end

function Client:_trim_queue()
  while self.queue:size() > self.cfg.outbox_max do
    local e = self.queue:shift()
    self.stats.dropped = self.stats.dropped + 1
    self:_fail(e, "dropped", "dropped")
  end
end

-- --- reading ---------------------------------------------------------------------------------
local READ_CHUNK = 65536
local INBUF_MAX = 1048576 -- stop reading (TCP pushes back) while this much is unprocessed

function Client:_read(deadline)
  local sock = self.sock
  -- past INBUF_MAX, read on only while no whole line is waiting (a reply may be that long)
  while #self.inbuf < INBUF_MAX or not find(self.inbuf, "\n", 1, true) do
    local data, err, partial = sock:receive(READ_CHUNK)
    data = data or partial
    if data and #data > 0 then
      self.inbuf = self.inbuf .. data
      -- a line longer than line_max (a hostile or broken peer) would grow the heap without end
      if #self.inbuf > self.cfg.line_max + 2 then
        local nl = find(self.inbuf, "\n", 1, true)
        if not nl or nl > self.cfg.line_max + 2 or
            not find(self.inbuf, "\n", #self.inbuf - self.cfg.line_max - 1, true) then
          self.stats.too_long = self.stats.too_long + 1
          return self:_drop("a line from the relay is over " .. self.cfg.line_max .. " bytes")
        end
      end
    end
    if err == "closed" then
      -- lines already read are still handled (e.g. "Server shutting down."), then we drop
      self.eof = true
      return
    elseif err and err ~= "timeout" then
      self.eof, self.eof_reason = true, err
      return
    end
    if not data or #data < READ_CHUNK or self.clock() >= deadline then return end
  end
end

function Client:_lines(deadline)
  local buf, pos, handled = self.inbuf, 1, 0
  while self.sock do
    local nl = find(buf, "\n", pos, true)
    if not nl then break end
    if nl - pos > self.cfg.line_max + 1 then
      self.stats.too_long = self.stats.too_long + 1
      self:_drop("a line from the relay is over " .. self.cfg.line_max .. " bytes")
      return handled
    end
    local line = sub(buf, pos, nl - 1)
    pos = nl + 1
    if byte(line, -1) == 13 then line = sub(line, 1, -2) end
    if line ~= "" then self:_line(line) end
    handled = handled + 1
    if self.clock() >= deadline then break end
  end
  if self.sock then
    self.inbuf = pos > 1 and sub(buf, pos) or buf
    if self.eof and not find(self.inbuf, "\n", 1, true) then
      self.eof = false
      self:_drop(self.closing or self.eof_reason or "connection closed")
    end
  end
  return handled
end

function Client:_line(line)
  local ok, msg = pcall(json.decode, line)
  if not ok or type(msg) ~= "table" then
    self.log("warn", "ssmglobal: unreadable line from the relay: " .. sub(line, 1, 200))
    return
  end
  if msg.state == "PUSH" then return self:_push(msg) end
  if not self.greeted then
    if msg.state == "OK" and msg.msg == GREETING then
      self.greeted = true
      self:_internal("MODE", "SERVER", "mode")
      self:_internal("AUTH", self.cfg.server_id .. " " .. self.cfg.key, "auth")
    else
      self:_drop("refused: " .. tostring(msg.msg))
    end
    return
  end
  if msg.id == nil and msg.state == "ERROR" and CLOSING[msg.msg] then
    self.closing = msg.msg -- the relay closes next; nothing of ours is answered by it
    return
  end
  local entry, index
  if msg.id ~= nil then
    for i, e in ipairs(self.inflight) do
      if e.rid == msg.id then entry, index = e, i; break end
    end
  end
  if not entry and self.inflight[1] then entry, index = self.inflight[1], 1 end -- FIFO
  if not entry then
    self.log("warn", "ssmglobal: an answer nobody asked for: " .. sub(line, 1, 200))
    return
  end
  remove(self.inflight, index)
  if entry.internal then return self:_internal_reply(entry, msg) end
  if msg.state == "OK" then
    self:_succeed(entry, msg.data)
  elseif entry.write and RETRY_CODES[msg.code]
      and self.clock() - (entry.retry_since or self.clock()) < self.cfg.retry_for_s then
    entry.retry_since = entry.retry_since or self.clock()
    local wait = tonumber(msg.retry_after) or 1
    self.retries[#self.retries + 1] = { at = self.clock() + max(wait, 0.5), entry = entry }
  else
    self:_fail(entry, msg.msg or "error", msg.code)
  end
  self:_pump()
end

function Client:_internal(cmd, args, kind)
  self.seq = self.seq + 1
  local e = { internal = kind, rid = self.seq, sent_at = self.clock() }
  self.inflight[#self.inflight + 1] = e
  self:_send_line(json.encode({ cmd = cmd, args = args, id = e.rid }))
end

function Client:_internal_reply(entry, msg)
  local kind = entry.internal
  if kind == "mode" then
    if msg.state ~= "OK" then self:_drop("MODE refused: " .. tostring(msg.msg)) end
  elseif kind == "auth" then
    if msg.state ~= "OK" then
      if msg.code == "unauthenticated" then -- a wrong id or key never becomes right: stop
        self.error = "AUTH refused: " .. tostring(msg.msg)
        self:_drop(self.error, true)
        self.state = "failed"
        self:_emit("failed", self.error)
        local e = self.queue:shift()
        while e do self:_fail(e, self.error, "failed"); e = self.queue:shift() end
        return
      end
      return self:_drop("AUTH failed: " .. tostring(msg.msg))
    end
    local tail = type(msg.data) == "table" and msg.data.cursor or "0-0"
    if type(msg.data) == "table" and type(msg.data.name) == "string" then
      self.server_name = msg.data.name -- the name the admin registered this server under
    end
    self.tail, self.live_hi, self.replay_to = tail, tail, nil
    if self.safe_id == nil then
      self.safe_id = tail
    else
      if id_cmp(tail, self.safe_id) > 0 then self.replay_to = tail end
      self:_internal("RESUME", tostring(self.safe_id), "resume")
    end
    self.state = "ready"
    self.backoff = self.cfg.backoff_min_s
    self.stats.connects = self.stats.connects + 1
    self:_emit("connected")
    self:_pump()
  elseif kind == "resume" then
    if msg.state ~= "OK" then self:_drop("RESUME failed: " .. tostring(msg.msg)) end
  end -- keepalive: the answer is proof of life, nothing more
end

-- --- pushes ----------------------------------------------------------------------------------
function Client:_remember(id)
  local pos = self.seen_pos % self.cfg.seen_max + 1
  local old = self.seen_ring[pos]
  if old then self.seen[old] = nil end
  self.seen_ring[pos], self.seen[id] = id, true
  self.seen_pos = pos
end

function Client:_push(msg)
  local id = msg.id and tostring(msg.id)
  if id and self.seen[id] then
    self.stats.duplicates = self.stats.duplicates + 1 -- handled before: only the bookkeeping
  else
    local data = msg.data
    if msg.event == "ban" and type(data) == "table" then
      self.bans:add(type(data.ban) == "table" and data.ban or data)
    elseif msg.event == "unban" and type(data) == "table" then
      local ban = type(data.ban) == "table" and data.ban or data
      self.bans:lift(ban.id)
    end
    self.stats.pushes = self.stats.pushes + 1
    self:_emit(msg.event, msg)
    self:_emit("*", msg)
    if id then self:_remember(id) end
  end
  if id then self:_advance(id) end
end

--- Move the resume point. It moves only over pushes that arrived in order: after a RESUME, the
--- replay of (safe_id, tail] may come after live pushes newer than tail, so until the replay
--- reaches tail the resume point follows the replay.
function Client:_advance(id)
  if self.replay_to and id_cmp(id, self.replay_to) <= 0 then
    if id_cmp(id, self.safe_id) > 0 then self.safe_id = id end
    if id_cmp(id, self.replay_to) == 0 then
      self.replay_to = nil
      if id_cmp(self.live_hi, self.safe_id) > 0 then self.safe_id = self.live_hi end
    end
  else
    if self.live_hi == nil or id_cmp(id, self.live_hi) > 0 then self.live_hi = id end
    if not self.replay_to and (self.safe_id == nil or id_cmp(id, self.safe_id) > 0) then
      self.safe_id = id
    end
  end
end

function Client:_emit(event, ...)
  local list = self.handlers[event]
  if not list then return end
  for _, fn in ipairs(list) do
    local ok, err = pcall(fn, ...)
    if not ok then self.log("error", "ssmglobal: handler for " .. event .. ": " .. tostring(err)) end
  end
end

-- --- writing ---------------------------------------------------------------------------------
function Client:_send_line(line)
  self.out[#self.out + 1] = line .. "\r\n"
  self.last_send = self.clock()
end

--- Move queued calls into flight while there is room.
function Client:_pump()
  if self.state ~= "ready" then return end
  while #self.inflight < self.cfg.max_inflight do
    local e = self.queue:shift()
    if not e then return end
    self.seq = self.seq + 1
    e.rid, e.sent_at = self.seq, self.clock()
    local cmd = { cmd = e.op, args = e.args or {}, id = e.rid, idempotency_key = e.key,
                  as = e.as }
    local ok, line = pcall(json.encode, cmd)
    if not ok then
      self:_fail(e, "cannot encode args: " .. tostring(line), "invalid_input")
    else
      if e.resent then self.stats.resent = self.stats.resent + 1 end
      self.stats.sent = self.stats.sent + 1
      self.inflight[#self.inflight + 1] = e
      self:_send_line(line)
    end
  end
end

function Client:_write()
  local sock = self.sock
  if self.chunk_pos > #self.chunk then
    if #self.out == 0 then return end
    self.chunk, self.chunk_pos, self.out = concat(self.out), 1, {}
  end
  local last, err, partial_last = sock:send(self.chunk, self.chunk_pos)
  last = last or partial_last
  if last then self.chunk_pos = last + 1 end
  if err and err ~= "timeout" then self:_drop("send: " .. tostring(err)) end
end

-- --- timers ----------------------------------------------------------------------------------
function Client:_timers(now)
  local cfg = self.cfg
  if self.state == "handshake" then
    if now - self.opened > cfg.handshake_timeout_s then self:_drop("handshake timed out") end
    return
  end
  local oldest = self.inflight[1]
  if oldest and now - oldest.sent_at > cfg.reply_timeout_s then
    return self:_drop("no answer for " .. cfg.reply_timeout_s .. " s")
  end
  if cfg.keepalive_s and cfg.keepalive_s > 0 and not oldest
      and now - self.last_send >= cfg.keepalive_s then
    -- HW is answered by the relay itself: no Redis, no thread; the answer proves the link
    self.stats.keepalives = self.stats.keepalives + 1
    self:_internal("HW", "1", "keepalive")
  end
end

function Client:_due_retries(now)
  if #self.retries == 0 then return end
  local keep = {}
  for _, r in ipairs(self.retries) do
    if r.at <= now then
      r.entry.resent = true
      self.queue:push(r.entry)
    else
      keep[#keep + 1] = r
    end
  end
  self.retries = keep
  self:_trim_queue()
  self:_pump()
end

-- --- callbacks -----------------------------------------------------------------------------------
function Client:_defer(fn, ...)
  self.deferred:push({ fn = fn, n = select("#", ...), ... })
end

function Client:_succeed(entry, data)
  if entry.cb then self:_defer(entry.cb, true, data) end
end

function Client:_fail(entry, message, code)
  if entry.cb then self:_defer(entry.cb, false, message, code) end
end

function Client:_run_deferred(deadline)
  local d = self.deferred:shift()
  while d do
    local ok, err = pcall(d.fn, unpack(d, 1, d.n))
    if not ok then self.log("error", "ssmglobal: callback: " .. tostring(err)) end
    if self.clock() >= deadline then return end
    d = self.deferred:shift()
  end
end

--- Counters: connects, disconnects, dropped, pushes, duplicates, sent, resent, keepalives,
--- plus the state, queued and in-flight calls and cached bans.
function Client:status()
  local s = copy(self.stats)
  s.state, s.queued, s.inflight = self.state, self.queue:size(), #self.inflight
  s.retrying, s.bans = #self.retries, self.bans:count()
  return s
end

return M
