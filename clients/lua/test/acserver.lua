--[[ acserver.lua: a stand-in for an AssaultCube server running AC-Lua and the (server)² core, so
that SSMGlobal.ssm runs headless in the tests. Written from clients/lua/README.md's facts (no code of the
released mod is in it):
- AC-Lua: clientprint, getname, getip, isadmin, isconnected, maxclient, getmapname, getgamemode,
  getsvtick, getteam, disconnect (calls onPlayerDisconnect at once, as the game does), logline,
  tmr.create/after/remove/vacantid, cfg.getvalue/setvalue/exists/createfile (lua/config/<f>.cfg),
  the DISC_*, FA_* and ACLOG_* constants and PLUGIN_BLOCK;
- the core: the handler tables and the on* events looping over them, SSCore.say/log/serverName,
  the chat dispatch (handlers first: one returning false blocks the line; then `commands`, with the
  whole line logged; "(?) Not a command"; else the line is shown and logged) and the module loader
  behind `!loadModule <Name> [unload]`.

Usage (the working directory is the game server's folder, holding lua/scripts/SSModules/ and
lua/config/): lua5.1 acserver.lua <control port> [server name] [core file]
It connects to 127.0.0.1:<control port> and takes JSON commands, one per line
({"id", "op", ...}); it answers {"id", "ok", "ret"} and reports what the game shows as events:
{"ev": "clientprint"|"log"|"print"|"disconnect", ...}. Everything the server "prints" also goes to
./server.log, as a real server's console log would. Every hook and timer is timed ("stats").
With a core file, that file is loaded instead of the stand-in core (to try a real one by hand);
with "plain", no core at all: lua/scripts/example_mod.lua runs, as on a plain AC-Lua server.
]]

local socket = require("socket")
local here = (arg and arg[0] or ""):match("^(.*/)") or "./"
local json = dofile(here .. "../ssmglobal.lua").json

local CONTROL_PORT = tonumber(arg[1])
local SERVER_NAME = arg[2] or "Test server"
local CORE_FILE = arg[3]

local ctl = assert(socket.connect("127.0.0.1", CONTROL_PORT))
ctl:settimeout(0)
ctl:setoption("tcp-nodelay", true)
local logfile = assert(io.open("server.log", "a"))
local real_print = print
local started = socket.gettime()

-- What the game reports is queued and written between events, so that the time a hook or timer
-- takes is the module's own, never the harness's reporting.
local outq = {}
local function emit(ev) outq[#outq + 1] = json.encode(ev) .. "\n" end

local function flush()
  if #outq == 0 then return end
  local line = table.concat(outq)
  outq = {}
  local i = 1
  while i <= #line do -- the controller reads at once; a short wait here is the harness's own
    local last, err, partial = ctl:send(line, i)
    last = last or partial
    if last then i = last + 1 end
    if err and err ~= "timeout" then os.exit(3) end
    if i <= #line then socket.select(nil, { ctl }, 1) end
  end
end

local function console(kind, text, extra)
  logfile:write(text, "\n")
  logfile:flush()
  local ev = { ev = kind, text = text }
  for k, v in pairs(extra or {}) do ev[k] = v end
  emit(ev)
end

-- =============================================================================================
-- AC-Lua
-- =============================================================================================
ACLOG_DEBUG, ACLOG_VERBOSE, ACLOG_INFO, ACLOG_WARNING, ACLOG_ERROR = 0, 1, 2, 3, 4
PLUGIN_BLOCK = 4
DISC_NONE, DISC_EOP, DISC_CN, DISC_MKICK, DISC_MBAN, DISC_TAGT, DISC_BANREFUSE, DISC_WRONGPW,
  DISC_SOPLOSS, DISC_MAXCLIENTS, DISC_MASTERMODE, DISC_AUTOKICK, DISC_AUTOBAN, DISC_DUP,
  DISC_BADNICK = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14
FA_PICKUP, FA_STEAL, FA_DROP, FA_LOST, FA_RETURN, FA_SCORE, FA_KTFSCORE, FA_RESET =
  0, 1, 2, 3, 4, 5, 6, 7

local game = { players = {}, map = "ac_desert", mode = 5, maxclients = 16 }
local timers = {}
local stats = { hooks = {}, timers = { max_ms = 0, n = 0, total_ms = 0 } }

local function timed(bucket, fn, ...)
  local t0, c0 = socket.gettime(), os.clock()
  local results = { pcall(fn, ...) }
  local ms = (socket.gettime() - t0) * 1000
  local cpu = (os.clock() - c0) * 1000
  if cpu > (bucket.max_cpu_ms or 0) then bucket.max_cpu_ms = cpu end
  bucket.n = bucket.n + 1
  bucket.total_ms = bucket.total_ms + ms
  if ms > bucket.max_ms then bucket.max_ms = ms end
  if not results[1] then
    console("log", "LUA ERROR: " .. tostring(results[2]), { level = 4, lua_error = true })
    return nil
  end
  return unpack(results, 2, table.maxn(results))
end

--- Run a game event (onX) as the server does, timed.
local function hook(name, ...)
  local fn = _G[name]
  if type(fn) ~= "function" then return nil end
  local bucket = stats.hooks[name]
  if not bucket then
    bucket = { max_ms = 0, n = 0, total_ms = 0 }
    stats.hooks[name] = bucket
  end
  return timed(bucket, fn, ...)
end

function print(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[#parts + 1] = tostring(select(i, ...)) end
  console("print", table.concat(parts, "\t"))
end

function logline(level, text) console("log", tostring(text), { level = level }) end

function clientprint(cn, text, exclude)
  emit({ ev = "clientprint", to = tonumber(cn) or -1, text = tostring(text),
         exclude = tonumber(exclude) or -1 })
end

function getname(cn) return game.players[cn] and game.players[cn].name end
function getip(cn) return game.players[cn] and game.players[cn].ip end
function isadmin(cn) return game.players[cn] and game.players[cn].admin or false end
function isconnected(cn) return game.players[cn] ~= nil end
function getteam(cn) return game.players[cn] and game.players[cn].team or 0 end
function maxclient() return game.maxclients end
function getmapname() return game.map end
function getgamemode() return game.mode end
function getsvtick() return math.floor((socket.gettime() - started) * 1000) end
function setservname() end
function setmotd() end

function disconnect(cn, reason)
  if not game.players[cn] or game.players[cn].leaving then return end
  game.players[cn].leaving = true
  emit({ ev = "disconnect", cn = cn, reason = reason })
  hook("onPlayerDisconnect", cn, reason)
  game.players[cn] = nil
end

tmr = {}
function tmr.create(id, ms, fn, once)
  timers[id] = { every = (tonumber(ms) or 0) / 1000, fn = fn, once = once,
                 due = socket.gettime() + (tonumber(ms) or 0) / 1000 }
  return true
end
function tmr.after(id, ms, fn) return tmr.create(id, ms, fn, true) end
function tmr.remove(id) timers[id] = nil end
function tmr.vacantid()
  local id = 0
  while timers[id] do id = id + 1 end
  return id
end

local function cfg_path(file) return "lua/config/" .. file .. ".cfg" end
local function cfg_read(file)
  local f = io.open(cfg_path(file), "r")
  if not f then return nil end
  local t = {}
  for line in f:lines() do
    local k, v = line:match("^%s*([^=#]-)%s*=%s*(.-)%s*$")
    if k and k ~= "" then t[k] = v end
  end
  f:close()
  return t
end
cfg = {}
function cfg.exists(file) return cfg_read(file) ~= nil end
function cfg.createfile(file)
  local f = io.open(cfg_path(file), "a")
  if f then f:close() end
end
function cfg.getvalue(file, key)
  local t = cfg_read(file)
  return t and t[key] or nil
end
function cfg.setvalue(file, key, value)
  local t = cfg_read(file) or {}
  t[key] = tostring(value)
  local f = assert(io.open(cfg_path(file), "w"))
  for k, v in pairs(t) do f:write(k, "=", v, "\n") end
  f:close()
end

-- =============================================================================================
-- The (server)² core, as clients/lua/README.md describes it
-- =============================================================================================
local EVENTS = {
  onPlayerConnect = "handlerPlayerConnect", onPlayerDisconnect = "handlerPlayerDisconnect",
  onMapChange = "handlerMapChange", onMapEnd = "handlerMapEnd",
  onFlagAction = "handlerFlagAction", onPlayerNameChange = "handlerPlayerNameChange",
  onPlayerSpawn = "handlerPlayerSpawn", onPlayerDeath = "handlerPlayerDeath",
}

local function standin_core()
  SSCore = { serverName = SERVER_NAME, versionCore = "9.0.0", versionAPI = "1.0",
             baseversionAPI = "1", loadedModules = {} }
  function SSCore.log(message, level, sender)
    logline(level, "[" .. tostring(sender) .. "] " .. tostring(message))
  end
  function SSCore.say(text, cn) clientprint(cn or -1, text) end

  for event, tname in pairs(EVENTS) do
    _G[tname] = {}
    _G[event] = function(...)
      for t, fns in pairs(_G[tname]) do
        for k in pairs(fns) do _G[tname][t][k](...) end
      end
    end
  end
  handlerPlayerSayText = {}

  local function load_module(name, unload)
    local ok, err = pcall(dofile, "lua/scripts/SSModules/" .. name .. ".ssm")
    if not ok then
      SSCore.log("Error loading Module: " .. tostring(err), 4, "Server Core")
      return false
    end
    if unload then
      if onModuleUnload then onModuleUnload() end
      for cmd in pairs(addCommands or {}) do commands[cmd] = nil end
      SSCore.loadedModules[name] = nil
    else
      for cmd, entry in pairs(addCommands or {}) do commands[cmd] = entry end
      if onModuleLoad then onModuleLoad() end
      SSCore.loadedModules[name] = true
    end
    onModuleLoad, onModuleUnload = nil, nil
    return true
  end

  commands = {
    ["!loadModule"] = { function(cn, args)
      if not isadmin(cn) then return SSCore.say("Insufficient permissions.", cn) end
      if not args[1] then return SSCore.say("Usage: !loadModule <Name> [unload]", cn) end
      local unload = args[2] ~= nil
      if load_module(args[1], unload) then
        SSCore.say("Module was " .. (unload and "un" or "") .. "loaded successfully.", cn)
      else
        SSCore.say("Module failed to load.", cn)
      end
    end },
  }

  function onPlayerSayText(cn, text, isTeam, isMe)
    for t, fns in pairs(handlerPlayerSayText) do
      for k in pairs(fns) do
        if handlerPlayerSayText[t][k](cn, text, isTeam, isMe) == false then return PLUGIN_BLOCK end
      end
    end
    local words = {}
    for w in text:gmatch("[^ ]+") do words[#words + 1] = w end
    local command = words[1] or ""
    local who = "[" .. tostring(getip(cn)) .. "] " .. tostring(getname(cn)) .. " (" .. cn .. ")"
    if commands[command] then
      SSCore.log(who .. " called: \"" .. text .. "\"", 22, "Server Core")
      print(who .. " called: \"" .. text .. "\"")
      table.remove(words, 1)
      commands[command][1](cn, words)
      return PLUGIN_BLOCK
    elseif command:sub(1, 1) == "!" then
      SSCore.log(who .. " called non-command: \"" .. text .. "\"", 22, "Server Core")
      print(who .. " called non-command: \"" .. text .. "\"")
      SSCore.say("\f3(?) Not a command: " .. command, cn)
      return PLUGIN_BLOCK
    end
    SSCore.log(who .. " says: \"" .. text .. "\"", 22, "Server Core")
    SSCore.say(tostring(getname(cn)) .. ": " .. text, -1)
    return PLUGIN_BLOCK
  end
end

if CORE_FILE == "plain" then -- a plain AC-Lua server: it runs the scripts in lua/scripts/
  dofile("lua/scripts/example_mod.lua")
elseif CORE_FILE then
  function include(name) dofile("lua/include/" .. name .. ".inc") end
  dofile(CORE_FILE)
  if onInit then hook("onInit") end
else
  standin_core()
end

-- =============================================================================================
-- The control connection
-- =============================================================================================
local OPS = {}
function OPS.connect(c)
  game.players[c.cn] = { name = c.name, ip = c.ip or "127.0.0.1", admin = c.admin or false }
  return hook("onPlayerConnect", c.cn)
end
function OPS.leave(c)
  if not game.players[c.cn] then return end
  game.players[c.cn].leaving = true
  hook("onPlayerDisconnect", c.cn, DISC_NONE)
  game.players[c.cn] = nil
end
function OPS.say(c) return hook("onPlayerSayText", c.cn, c.text, c.team or false, false) end
function OPS.rename(c)
  local r = hook("onPlayerNameChange", c.cn, c.name)
  if game.players[c.cn] then game.players[c.cn].name = c.name end
  return r
end
function OPS.flag(c) return hook("onFlagAction", c.cn, c.action, c.flag or 0) end
function OPS.mapend() return hook("onMapEnd") end
function OPS.mapchange(c)
  game.map, game.mode = c.map, c.mode
  return hook("onMapChange", c.map, c.mode)
end
function OPS.stats(c)
  local out = { hooks = stats.hooks, timers = stats.timers }
  if c.reset then stats = { hooks = {}, timers = { max_ms = 0, n = 0, total_ms = 0 } } end
  return out
end
function OPS.module()
  local m = SSMGlobalModule
  if not m then return { loaded = false } end
  local st = m.client:status()
  return { loaded = true, state = st.state, queued = st.queued, inflight = st.inflight,
           connected = m.client:connected() }
end
function OPS.players()
  local out = {}
  for cn, p in pairs(game.players) do out[#out + 1] = { cn = cn, name = p.name } end
  return json.array(out)
end

local running, buf = true, ""
function OPS.quit() running = false end

local function handle(line)
  local ok, cmd = pcall(json.decode, line)
  if not ok or type(cmd) ~= "table" then return emit({ ok = false, error = "bad command" }) end
  local op = OPS[cmd.op]
  if not op then return emit({ id = cmd.id, ok = false, error = "unknown op " .. tostring(cmd.op) }) end
  local good, ret = pcall(op, cmd)
  if ret == nil then ret = json.null end
  emit({ id = cmd.id, ok = good, ret = good and ret or json.null,
         error = (not good) and tostring(ret) or nil })
end

emit({ ev = "ready" })
while running do
  flush()
  local line, err, partial = ctl:receive("*l", buf)
  if line then
    buf = ""
    handle(line)
  elseif err == "timeout" then
    buf = partial or ""
  else
    break -- the controller went away
  end
  local now, due = socket.gettime(), {}
  for id, t in pairs(timers) do
    if now >= t.due then due[#due + 1] = { id, t } end
  end
  for _, it in ipairs(due) do -- a timer may create or remove timers: not while iterating
    local id, t = it[1], it[2]
    if timers[id] == t then
      if t.once then timers[id] = nil else t.due = now + math.max(t.every, 0.001) end
      local fn = type(t.fn) == "string" and _G[t.fn] or t.fn
      if type(fn) == "function" then timed(stats.timers, fn) end
    end
  end
  flush()
  if not line then socket.select({ ctl }, nil, 0.002) end
end
flush()
if onDestroy then onDestroy() end
logfile:close()
real_print("harness stopped")
