--[[ example_mod.lua: SSMGlobal on a plain AC-Lua server (AssaultCube with Sveark's Lua API and no
(server)² core). On a (server)² server do not use this file: load the module with
`!loadModule SSMGlobal` instead.

Install (paths relative to the AssaultCube server's folder):
  lua/scripts/example_mod.lua               this file (AC-Lua runs every script in lua/scripts/)
  lua/scripts/SSModules/SSMGlobal.ssm       the module: all of the game logic
  lua/scripts/SSModules/ssmglobal.lua       the client library the module loads
  lua/config/ssmglobal.cfg                  the settings (README.md next to this file)

This file holds no game logic of its own. It provides the few parts of the (server)² core that the
module relies on (the handler tables and the AC-Lua events that loop over them, SSCore.log and
SSCore.say), then loads SSMGlobal.ssm and starts it, as the core's `!loadModule` would.
MIT licence, (c) the SSMGlobal authors.
]]

local MODULE_FILE = SSMGLOBAL_MODULE_FILE or "lua/scripts/SSModules/SSMGlobal.ssm"

SSCore = SSCore or {}
SSCore.log = SSCore.log or function(message, level, sender)
  logline(level, "[" .. tostring(sender) .. "] " .. tostring(message))
end
SSCore.say = SSCore.say or function(text, cn) clientprint(cn or -1, text) end

-- The AC-Lua events the module uses, each a loop over a table of handler tables (as in the core).
local EVENTS = {
  onPlayerConnect = "handlerPlayerConnect", onPlayerDisconnect = "handlerPlayerDisconnect",
  onPlayerNameChange = "handlerPlayerNameChange", onFlagAction = "handlerFlagAction",
  onMapEnd = "handlerMapEnd", onMapChange = "handlerMapChange",
}
for event, tname in pairs(EVENTS) do
  _G[tname] = _G[tname] or {}
  _G[event] = function(...)
    for _, fns in pairs(_G[tname]) do
      for k in pairs(fns) do fns[k](...) end
    end
  end
end

-- Chat: a handler returning false takes the line (a command, maybe with a password): blocked.
handlerPlayerSayText = handlerPlayerSayText or {}
function onPlayerSayText(cn, text, isTeam, isMe)
  for _, fns in pairs(handlerPlayerSayText) do
    for k in pairs(fns) do
      if fns[k](cn, text, isTeam, isMe) == false then return PLUGIN_BLOCK end
    end
  end
end

dofile(MODULE_FILE)
local unload = onModuleUnload
if onModuleLoad then onModuleLoad() end
onModuleLoad, onModuleUnload = nil, nil

function onDestroy()
  if unload then unload() end
end
