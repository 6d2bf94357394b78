-- A stand-in for the AssaultCube server's Lua API, so example_mod.lua runs headless.
-- It defines the globals the mod uses (hooks are called by the F.* functions below) and keeps
-- what the mod did (console lines, chat lines sent, kicks) for the test to look at.
local socket = require("socket")

local F = { console = {}, said = {}, kicked = {}, timers = {}, players = {},
            map = "ac_desert", mode = "ctf" }

ACLOG_DEBUG, ACLOG_VERBOSE, ACLOG_INFO, ACLOG_WARNING, ACLOG_ERROR = 0, 1, 2, 3, 4
PLUGIN_BLOCK = 4
DISC_BANNED = 5

function logline(level, text)
  F.console[#F.console + 1] = text
  io.stderr:write("console: ", text, "\n")
end

function say(text, cn)
  F.said[#F.said + 1] = { cn = cn, text = text }
end

function getname(cn) return F.players[cn] and F.players[cn].name end
function getip(cn) return F.players[cn] and F.players[cn].ip end
function getfrags(cn) return F.players[cn] and F.players[cn].frags or 0 end
function getservername() return "Fake CTF" end
function getserverport() return 28763 end
function getmaxclients() return 16 end
function getmapname() return F.map end
function getmodename() return F.mode end

function players()
  local out = {}
  for cn in pairs(F.players) do out[#out + 1] = cn end
  table.sort(out)
  return out
end

function disconnect(cn, reason)
  F.kicked[#F.kicked + 1] = { cn = cn, reason = reason }
  F.leave(cn, reason)
end

tmr = {}
function tmr.create(id, interval_ms, fn)
  F.timers[id] = { every = interval_ms / 1000, fn = fn, due = socket.gettime() + interval_ms / 1000 }
end
function tmr.remove(id) F.timers[id] = nil end

-- --- the game's side ---------------------------------------------------------------------------------
function F.connect(cn, name, ip)
  F.players[cn] = { name = name, ip = ip, frags = 0 }
  if onPlayerConnect then onPlayerConnect(cn) end
end

function F.chat(cn, text)
  if onPlayerSayText then return onPlayerSayText(cn, text) end
end

function F.leave(cn, reason)
  if not F.players[cn] then return end
  if onPlayerDisconnect then onPlayerDisconnect(cn, reason or 0) end
  F.players[cn] = nil
end

function F.set_frags(cn, n) F.players[cn].frags = n end

-- The hook sees the old game's scores; then the new game starts from zero.
function F.map_change(map, mode)
  if onMapChange then onMapChange(map, mode) end
  F.map, F.mode = map, mode
  for _, p in pairs(F.players) do p.frags = 0 end
end

--- Run the server's frames (timers due, 1 ms sleep) until cond() or the timeout (an error).
function F.run_until(cond, what, timeout)
  local deadline = socket.gettime() + (timeout or 10)
  while not cond() do
    if socket.gettime() > deadline then error("timed out waiting for " .. what, 2) end
    local now = socket.gettime()
    for _, t in pairs(F.timers) do
      if now >= t.due then
        t.due = now + t.every
        t.fn()
      end
    end
    socket.sleep(0.001)
  end
end

function F.console_has(pattern)
  for _, line in ipairs(F.console) do
    if line:find(pattern) then return line end
  end
end

function F.said_to(cn, pattern)
  for _, s in ipairs(F.said) do
    if s.cn == cn and s.text:find(pattern) then return s.text end
  end
end

return F
