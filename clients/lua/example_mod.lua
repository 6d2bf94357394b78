--[[ example_mod.lua: SSMGlobal wired to an AssaultCube server's Lua hooks (an example to adapt).

Drop ssmglobal.lua and this file into the mod's lua folder, fill in CONFIG, and load it the way
the mod loads scripts. The hook and function names below are the ones the (server)² mod's Lua
API uses as we assume them: hooks onPlayerConnect(cn), onPlayerDisconnect(cn, reason),
onMapChange(map, mode), onPlayerSayText(cn, text); functions getname(cn), getip(cn),
say(text, cn), logline(level, text), players(), getfrags(cn), disconnect(cn, reason),
getservername(), getserverport(), getmaxclients(), getmapname(), getmodename(), and a timer
tmr.create(id, interval_ms, fn). Rename them to your mod's if they differ; nothing else changes.
clients/lua/test/fake_game.lua provides the same names so this runs headless in the tests.

What it does:
- polls the client from a 5 ms timer (the poll returns within 2 ms, whatever the network does);
- sends a heartbeat every 30 s and at each map change, from the server's state;
- `!token <session token>` in chat (the message is not shown to others): the player is joined
  to this server (presence.join) and greeted by name; leaving the server leaves SSMGlobal too;
- at the end of a game (the next map change) each joined player's frags are submitted to the
  board "<mode>.<map>" (an admin creates the boards that should exist);
- a new player is checked against the bans (and, when the backend has it, name.check); while the
  backend is unreachable the cached bans still apply;
- messages from other servers are printed to the console; mail notices are shown to the player.
]]

local ssm = require("ssmglobal")

local CONFIG = SSM_CONFIG or {
  host = "ssm.example.org", port = 53450,
  server_id = "CHANGE-ME", key = "CHANGE-ME",
  public_host = "ac.example.org", -- the address players connect to, for the server list
  version = "1.3",
  heartbeat_ms = 30000,
  tick_ms = 5,
  send_ip = false, -- true once the backend's presence.join takes `ip` (SPEC §9)
}

local mod = { sessions = {}, game = {} } -- sessions: cn -> {name = registered name}

local function log(text) logline(ACLOG_INFO, "[ssm] " .. text) end
local function warn(text) logline(ACLOG_WARNING, "[ssm] " .. text) end

local client = assert(ssm.connect({
  host = CONFIG.host, port = CONFIG.port, server_id = CONFIG.server_id, key = CONFIG.key,
  log = function(level, text) logline(level == "info" and ACLOG_INFO or ACLOG_WARNING, text) end,
}))
mod.client = client

local function cn_of(name)
  for _, cn in ipairs(players()) do
    local s = mod.sessions[cn]
    if s and s.name:lower() == name:lower() then return cn end
  end
end

local function players_has(cn)
  for _, c in ipairs(players()) do if c == cn then return true end end
  return false
end

local function board_name(mode, map)
  return ((tostring(mode) .. "." .. tostring(map)):lower():gsub("[^a-z0-9_.:-]", "_"))
end

-- --- the server's state, as a heartbeat ----------------------------------------------------------
-- The map and mode come from onMapChange's arguments (getmapname() may still name the old map
-- while the hook runs).
local function heartbeat()
  local names = {}
  for _, cn in ipairs(players()) do names[#names + 1] = getname(cn) end
  client:heartbeat({
    name = getservername(), host = CONFIG.public_host, port = getserverport(),
    map = mod.game.map or getmapname(), mode = mod.game.mode or getmodename(), players = names,
    max_players = getmaxclients(), version = CONFIG.version, public = true,
  }, function(ok, err)
    if ok then mod.heartbeats = (mod.heartbeats or 0) + 1 else warn("heartbeat: " .. err) end
  end)
end

-- --- pushes -------------------------------------------------------------------------------------------
client:on("connected", function() log("connected to SSMGlobal"); heartbeat() end)
client:on("disconnected", function(reason) warn("disconnected: " .. tostring(reason)) end)
client:on("failed", function(reason) warn("stopped: " .. tostring(reason)) end)

client:on("message", function(push)
  local m = push.data
  log(string.format("message from %s: %s", tostring(m.from), tostring(m.body)))
end)

client:on("mail", function(push)
  local n = push.data
  local cn = cn_of(n.player)
  if cn then
    say(string.format("\f1You have new mail from %s: %s (%d unread)", tostring(n.from),
                      tostring(n.subject), tonumber(n.unread) or 1), cn)
  end
end)

client:on("server_offline", function(push)
  log("server offline: " .. tostring(push.data.body or push.data.server or "?"))
end)

local function enforce_bans()
  for _, cn in ipairs(players()) do
    local name = mod.sessions[cn] and mod.sessions[cn].name or getname(cn)
    local verdict = client:ban_cache():check(name, getip(cn))
    if verdict.banned then
      say("\f3Banned: " .. tostring(verdict.bans[1].reason), cn)
      disconnect(cn, DISC_BANNED)
    end
  end
end
client:on("ban", enforce_bans)

-- --- hooks ---------------------------------------------------------------------------------------------
function onPlayerConnect(cn)
  local name, ip = getname(cn), getip(cn)
  client:check_ban(name, ip, function(ok, verdict)
    if not ok then -- the operation failed (e.g. not in this backend yet): use what we know
      verdict = client:ban_cache():check(name, ip)
    end
    if verdict.banned and players_has(cn) then
      say("\f3Banned: " .. tostring(verdict.bans[1].reason), cn)
      disconnect(cn, DISC_BANNED)
    end
  end)
  client:check_name(name, nil, function(ok, answer)
    if ok and not answer.allowed and players_has(cn) then
      say("\f3The name " .. name .. " is protected (" .. tostring(answer.reason) ..
          "): log in with !token or rename.", cn)
    end
  end)
end

function onPlayerDisconnect(cn, reason)
  local s = mod.sessions[cn]
  mod.sessions[cn] = nil
  if s then
    client:leave(s.name, function(ok, err)
      if ok then log(s.name .. " left") else warn("leave " .. s.name .. ": " .. err) end
    end)
  end
end

function onPlayerSayText(cn, text)
  local token = text:match("^!token%s+(%S+)")
  if not token then return end
  client:join(token, CONFIG.send_ip and getip(cn) or nil, function(ok, data)
    if not players_has(cn) then return end
    if ok then
      mod.sessions[cn] = { name = data.player.name }
      say("\f0Logged in as " .. data.player.name .. ".", cn)
      log(getname(cn) .. " joined as " .. data.player.name)
    else
      say("\f3Login failed: " .. tostring(data), cn)
    end
  end)
  return PLUGIN_BLOCK -- the token is not shown to the other players
end

-- The game that just ended is submitted when the next map starts (scores are still there).
function onMapChange(map, mode)
  local board = board_name(mod.game.mode or getmodename(), mod.game.map or getmapname())
  for cn, s in pairs(mod.sessions) do
    if players_has(cn) then
      local score = getfrags(cn)
      client:submit(board, s.name, score, { map = mod.game.map }, function(ok, data)
        if ok then
          log(string.format("record %s %s %d rank %s", board, s.name, score, tostring(data.rank)))
        else
          warn("record " .. board .. " " .. s.name .. ": " .. tostring(data))
        end
      end)
    end
  end
  mod.game = { map = map, mode = mode }
  heartbeat()
end

mod.game = { map = getmapname(), mode = getmodename() }
tmr.create(1, CONFIG.tick_ms, function() client:poll() end)
tmr.create(2, CONFIG.heartbeat_ms, heartbeat)

return mod
