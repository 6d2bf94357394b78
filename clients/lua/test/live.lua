-- ssmglobal.lua against a real relay (tests/test_lua_client.py starts the stack and reads this).
-- Usage: lua5.1 live.lua <scenario> '<json config>'
-- Prints `ok <name>` / `fail <name>: why`, `metric <name> <value>`, `data <json>`, and
-- `sync <tag>` when it waits for one line on stdin (the test kills or restarts the relay then).
local dir = (arg and arg[0] or ""):match("^(.*/)") or "./"
package.path = dir .. "?.lua;" .. dir .. "../?.lua;" .. package.path
local H = require("helpers")
local ssm = require("ssmglobal")
local socket = require("socket")
local json = ssm.json

local scenario, cfg = arg[1], json.decode(arg[2] or "{}")
local phase = "up"
local max_poll, max_cpu, polls, over = {}, {}, {}, {}

local function client(over)
  local opts = { host = cfg.host or "127.0.0.1", port = cfg.port, server_id = cfg.server_id,
                 key = cfg.key, connect_timeout_s = 1, handshake_timeout_s = 1,
                 log = function(level, msg) io.stderr:write(level, " ", msg, "\n") end }
  for k, v in pairs(over or {}) do opts[k] = v end
  return assert(ssm.connect(opts))
end

-- One game tick: poll, timed, then sleep 1 ms as a server frame would.
local function tick(c)
  local t0, cpu0 = socket.gettime(), os.clock()
  c:poll()
  local ms = (socket.gettime() - t0) * 1000
  local cpu = (os.clock() - cpu0) * 1000 -- this process's CPU time: our work, not the scheduler's
  if cpu > (max_cpu[phase] or 0) then max_cpu[phase] = cpu end
  if ms > (max_poll[phase] or 0) then max_poll[phase] = ms end
  polls[phase] = (polls[phase] or 0) + 1
  if ms > 2 then over[phase] = (over[phase] or 0) + 1 end
  socket.sleep(0.001)
end

local function wait_for(c, cond, what, timeout)
  local deadline = socket.gettime() + (timeout or 10)
  while not cond() do
    if socket.gettime() > deadline then error("timed out waiting for " .. what, 2) end
    tick(c)
  end
end

local function run_for(c, seconds)
  local stop = socket.gettime() + seconds
  while socket.gettime() < stop do tick(c) end
end

-- Call and wait for the callback: returns ok, data_or_error, code.
local function sync_call(c, fn)
  local done
  fn(function(...) done = { ... } end)
  wait_for(c, function() return done end, "an answer")
  return done[1], done[2], done[3]
end

local function sync(tag)
  print("sync " .. tag)
  io.stdout:flush()
  return io.read("*l")
end

local function metrics()
  for name, ms in pairs(max_poll) do
    print(string.format("metric poll_max_ms_%s %.3f", name, ms))
    print(string.format("metric poll_max_cpu_ms_%s %.3f", name, max_cpu[name]))
    print(string.format("metric polls_%s %d", name, polls[name]))
    print(string.format("metric polls_over_2ms_%s %d", name, over[name] or 0))
  end
end

local function data(t)
  print("data " .. json.encode(t))
end

-- --- scenarios ---------------------------------------------------------------------------------
local scenarios = {}

function scenarios.wrappers()
  local c = client()
  local out = {}
  wait_for(c, function() return c:connected() end, "AUTH")
  H.test("heartbeat", function()
    local ok, d = sync_call(c, function(cb)
      c:heartbeat({ name = "Lua CTF", host = "127.0.0.1", port = 28763, map = "ac_desert",
                    mode = "ctf", players = {}, max_players = 16, version = "1.3",
                    public = true }, cb)
    end)
    H.eq(ok, true, "ok " .. tostring(d))
  end)
  H.test("join", function()
    local ok, d = sync_call(c, function(cb) c:join(cfg.alice_token, nil, cb) end)
    H.eq(ok, true, "ok " .. tostring(d))
  end)
  H.test("submit", function()
    local ok, d = sync_call(c, function(cb) c:submit(cfg.board, "alice", 42, { kills = 7 }, cb) end)
    H.eq(ok, true, "ok " .. tostring(d))
    H.eq(d.rank, 1, "rank")
  end)
  H.test("send_message", function()
    local ok, d = sync_call(c, function(cb) c:send_message(cfg.peer_id, "hello peer", nil, cb) end)
    H.eq(ok, true, "ok " .. tostring(d))
    out.message_id = d.id
  end)
  H.test("send_mail", function()
    local ok, d = sync_call(c, function(cb) c:send_mail("alice", "bob", "hi bob", "subj", cb) end)
    H.eq(ok, true, "ok " .. tostring(d))
    out.mail_id = d.id
  end)
  H.test("call_write_and_read", function()
    local ok, d = sync_call(c, function(cb)
      c:call("server.settings.set", { id = cfg.server_id, key = "motd", value = { text = "hi" } }, cb)
    end)
    H.eq(ok, true, "set " .. tostring(d))
    ok, d = sync_call(c, function(cb) c:call("status.get", { id = cfg.server_id }, cb) end)
    H.eq(ok, true, "get " .. tostring(d))
    H.eq(d.name, "Lua CTF", "status name")
  end)
  H.test("call_error", function()
    local ok, msg, code = sync_call(c, function(cb) c:call("record.top", { board = "nope" }, cb) end)
    H.eq(ok, false); H.eq(code, "not_found", "code (" .. tostring(msg) .. ")")
  end)
  H.test("push_while_call_in_flight", function()
    -- a message to ourselves (its push) and a read, both sent before anything is read back
    local order, pushed, sent, got = {}, nil, nil, nil
    c:on("message", function(p)
      if p.data.body == "to myself" then pushed = p; order[#order + 1] = "push" end
    end)
    c:send_message(cfg.server_id, "to myself", nil, function(ok, d)
      sent = { ok, d }; order[#order + 1] = "send"
    end)
    c:call("status.get", { id = cfg.server_id }, function(ok, d)
      got = { ok, d }; order[#order + 1] = "get"
    end)
    wait_for(c, function() return pushed and sent and got end, "push and answers")
    H.eq(sent[1], true, "send ok"); H.eq(got[1], true, "get ok")
    H.eq(got[2].name, "Lua CTF", "the status answer went to the status callback")
    H.eq(pushed.id, sent[2].id, "the push is the message sent")
    out.order = table.concat(order, ",")
  end)
  H.test("check_ban", function()
    local ok, d = sync_call(c, function(cb) c:check_ban("alice", "192.0.2.1", cb) end)
    H.eq(ok, true, "ok " .. tostring(d)); H.eq(d.banned, false); H.eq(#d.bans, 0)
  end)
  H.test("check_name", function()
    local ok, d = sync_call(c, function(cb) c:check_name("alice", nil, cb) end)
    H.eq(ok, true, "ok " .. tostring(d)); H.eq(d.allowed, false)
    H.eq(d.reason, "name_registered"); H.eq(d.owner, "alice")
  end)
  H.test("leave", function()
    local ok, d = sync_call(c, function(cb) c:leave("alice", cb) end)
    H.eq(ok, true, "ok " .. tostring(d))
  end)
  H.test("connected_stays", function() H.eq(c:status().disconnects, 0) end)
  data(out)
  metrics()
  c:close()
end

-- The relay is killed and started again by the test, which sends messages to us meanwhile.
function scenarios.restart()
  local c = client()
  local bodies, counts = {}, {}
  c:on("message", function(p)
    local b = p.data.body
    bodies[#bodies + 1] = b
    counts[b] = (counts[b] or 0) + 1
  end)
  local function have(b) return counts[b] ~= nil end
  wait_for(c, function() return c:connected() end, "AUTH")
  sync("connected") -- the test sends m1 over HTTP
  wait_for(c, function() return have("m1") end, "the live push m1")
  local results = {}
  local function write(body)
    c:send_message(cfg.peer_id, body, nil, function(ok, d, code)
      results[body] = ok and "ok" or (tostring(d) .. "/" .. tostring(code))
    end)
  end
  -- writes in flight when the relay dies: applied there, their answers lost on the way
  sync("hold")
  for i = 1, 3 do write("x" .. i) end
  c:poll()
  sync("kill") -- the relay is SIGKILLed; m2..m6 are sent over HTTP while it is down
  phase = "down"
  wait_for(c, function() return not c:connected() end, "the disconnect")
  for i = 1, 5 do write("w" .. i) end -- made while down: the outbox
  run_for(c, 2)
  H.test("outbox_holds_writes_while_down", function()
    H.eq(c:status().queued >= 5, true, "queued " .. c:status().queued)
  end)
  sync("restart") -- the relay is started again on the same port
  phase = "up"
  wait_for(c, function()
    if not c:connected() then return false end
    for i = 1, 6 do if not have("m" .. i) then return false end end
    for _, b in ipairs({ "x1", "x2", "x3", "w1", "w2", "w3", "w4", "w5" }) do
      if not results[b] then return false end
    end
    return true
  end, "reconnect, replayed pushes and answers", 30)
  local dup = 0
  for _, n in pairs(counts) do dup = dup + (n - 1) end
  local lost = 0
  for i = 1, 6 do if not have("m" .. i) then lost = lost + 1 end end
  print("metric pushes_lost " .. lost)
  print("metric pushes_duplicated " .. dup)
  H.test("writes_answered", function()
    for b, r in pairs(results) do H.eq(r, "ok", b) end
  end)
  data({ bodies = bodies, results = results, status = c:status() })
  metrics()
  c:close()
end

-- Polls against endpoints that never answer: each port given is tried for `seconds`.
function scenarios.blackhole()
  for _, target in ipairs(cfg.targets) do
    phase = target.name
    local attempts = 0
    local c = client({ port = target.port, connect_timeout_s = 1, handshake_timeout_s = 1,
                       tcp = function() attempts = attempts + 1; return socket.tcp() end })
    c:call("message.send", { to = "x", body = "waits" })
    run_for(c, cfg.seconds or 3)
    H.test("never_connected_" .. target.name, function() H.eq(c:connected(), false) end)
    H.test("kept_trying_" .. target.name, function()
      H.eq(attempts >= 2, true, "attempts " .. attempts)
    end)
    H.test("write_still_queued_" .. target.name, function() H.eq(c:status().queued, 1) end)
    c:close()
  end
  metrics()
end

-- Idle for a while against a relay with a short idle timeout.
function scenarios.idle()
  local c = client({ keepalive_s = cfg.keepalive_s })
  wait_for(c, function() return c:connected() end, "AUTH")
  run_for(c, cfg.seconds)
  local s = c:status()
  print("metric disconnects " .. s.disconnects)
  print("metric keepalives " .. s.keepalives)
  c:close()
end

local fn = scenarios[scenario]
if not fn then
  print("fail usage: unknown scenario " .. tostring(scenario))
  os.exit(2)
end
local ok, err = pcall(fn)
if not ok then
  H.failures = H.failures + 1
  print("fail " .. scenario .. ": " .. tostring(err))
end
H.finish()
