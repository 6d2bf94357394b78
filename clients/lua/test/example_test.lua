-- example_mod.lua in the fake game, against a real relay (driven by tests/test_lua_client.py).
-- Usage: lua5.1 example_test.lua '<json config>'
local dir = (arg and arg[0] or ""):match("^(.*/)") or "./"
package.path = dir .. "?.lua;" .. dir .. "../?.lua;" .. package.path
local H = require("helpers")
local ssm = require("ssmglobal")
local F = require("fake_game")

local cfg = ssm.json.decode(arg[1])
SSM_CONFIG = { host = "127.0.0.1", port = cfg.port, server_id = cfg.server_id, key = cfg.key,
               public_host = "127.0.0.1", version = "1.3", heartbeat_ms = 1000, tick_ms = 5 }

local function sync(tag)
  print("sync " .. tag)
  io.stdout:flush()
  return io.read("*l")
end

local mod = dofile(dir .. "../example_mod.lua")
local ALICE, EVE = 0, 1

H.test("connects_and_sends_heartbeats", function()
  F.run_until(function() return (mod.heartbeats or 0) >= 2 end, "two heartbeats")
  H.truthy(F.console_has("connected to SSMGlobal"), "console says connected")
end)

H.test("player_joins_with_token", function()
  F.connect(ALICE, "alice", "192.0.2.10")
  H.eq(F.chat(ALICE, "!token " .. cfg.alice_token), PLUGIN_BLOCK, "the token is not shown")
  F.run_until(function() return F.said_to(ALICE, "Logged in as alice") end, "the greeting")
end)

H.test("unknown_ban_and_name_operations_do_not_kick", function()
  F.connect(EVE, "eve", "192.0.2.11")
  F.run_until(function() return #mod.client.inflight == 0 end, "answers")
  H.eq(#F.kicked, 0)
end)

sync("joined") -- the test sends a message from another server and a mail to alice

H.test("message_printed_to_console", function()
  F.run_until(function() return F.console_has("message from .*: hello from peer") end, "message")
end)

H.test("mail_notice_shown_to_player", function()
  F.run_until(function() return F.said_to(ALICE, "new mail from bob: gg") end, "mail notice")
end)

H.test("records_submitted_at_game_end", function()
  F.set_frags(ALICE, 17)
  F.set_frags(EVE, 3) -- not logged in: nothing submitted for eve
  F.map_change("ac_mines", "ctf")
  F.run_until(function() return F.console_has("record ctf.ac_desert alice 17 rank 1") end,
              "the record")
end)

H.test("ban_push_kicks_online_player", function()
  -- the ban cache learns from a ban push (fed here as the backend will send it)
  mod.client:_line(ssm.json.encode({ state = "PUSH", event = "ban", id = "1-1",
    data = { id = "1-1", type = "ban", ban = { id = "bn1", player = "eve", reason = "cheating" } } }))
  H.eq(F.kicked[1] and F.kicked[1].cn, EVE, "eve kicked")
  H.truthy(F.said_to(EVE, "Banned: cheating"), "told why")
end)

H.test("player_leaves", function()
  F.leave(ALICE)
  F.run_until(function() return F.console_has("alice left") end, "leave")
end)

sync("done")
mod.client:close()
H.finish()
