-- Pure unit tests of ssmglobal.lua: no network, a fake transport and a clock the test moves.
-- Run: lua5.1 clients/lua/test/unit.lua   (prints `ok <name>` / `fail <name>: why`)
local dir = (arg and arg[0] or ""):match("^(.*/)") or "./"
package.path = dir .. "?.lua;" .. dir .. "../?.lua;" .. package.path
local H = require("helpers")
local ssm = require("ssmglobal")
local json = ssm.json
local test, eq, truthy = H.test, H.eq, H.truthy

local function new_client(over)
  local net, clock = H.fake_net(json), H.fake_clock()
  local opts = { host = "127.0.0.1", port = 1, server_id = "srv1", key = "k1",
                 tcp = net.tcp, clock = clock.now, wall_clock = clock.now }
  for k, v in pairs(over or {}) do opts[k] = v end
  return assert(ssm.connect(opts)), net, clock
end

-- Greeting, MODE and AUTH answered; `cursor` is the AUTH reply's inbox tail.
local function handshake(c, s, cursor)
  c:poll()
  s:feed({ state = "OK", msg = "CONNECTED serversquaredGlobal" })
  c:poll()
  local cmds = s:commands()
  local n = #cmds
  eq(cmds[n - 1].cmd, "MODE")
  eq(cmds[n].cmd, "AUTH")
  s:feed({ state = "OK", msg = "Mode: SERVER", id = cmds[n - 1].id })
  s:feed({ state = "OK", msg = "Authenticated as server srv1.",
           data = { id = "srv1", name = "x", cursor = cursor or "5-0" }, id = cmds[n].id })
  c:poll()
end

local function ready_client(over)
  local c, net, clock = new_client(over)
  c:poll() -- opens the socket (the fake connects at once)
  handshake(c, net.sock)
  truthy(c:connected(), "connected")
  return c, net, clock
end

local function answer(s, cmd, data, extra)
  local reply = { state = "OK", msg = cmd.cmd, data = data, id = cmd.id }
  for k, v in pairs(extra or {}) do reply[k] = v end
  s:feed(reply)
end

local function push(s, id, event, data)
  s:feed({ state = "PUSH", event = event or "message", id = id,
           data = data or { id = id, from = "other", body = "b" .. id } })
end

local function recorder()
  local calls = {}
  local function cb(...) calls[#calls + 1] = { n = select("#", ...), ... } end
  return calls, cb
end

-- --- JSON --------------------------------------------------------------------------------------
test("json round trip of the shapes the relay sends", function()
  local line = '{"state": "OK", "msg": "x", "data": {"a": [1, -2.5, 1e3, "\\u00e9\\ud83d\\ude00", ' ..
               'true, false], "empty": [], "o": {}, "s": "tab\\there \\"q\\" \\\\ \\/"}, "id": 7}'
  local v = json.decode(line)
  eq(v.data.a[2], -2.5); eq(v.data.a[3], 1000); eq(v.data.a[4], "\195\169\240\159\152\128")
  eq(v.data.a[5], true); eq(v.data.a[6], false); eq(#v.data.empty, 0)
  eq(v.data.s, 'tab\there "q" \\ /'); eq(v.id, 7)
  local again = json.decode(json.encode(v))
  eq(again.data.s, v.data.s); eq(again.data.a[4], v.data.a[4])
  eq(json.encode(v.data.empty), "[]", "a decoded empty array stays an array")
  eq(json.encode({}), "{}"); eq(json.encode(json.array()), "[]")
  eq(json.encode({ "a", 2 }), '["a",2]'); eq(json.encode("\1\n"), '"\\u0001\\n"')
  eq(json.encode(12345678901), "12345678901"); eq(json.encode(0.5), "0.5")
  for _, bad in ipairs({ "{", '{"a" 1}', "[1,", '"abc', "nul", "{} x", '"\\q"' }) do
    truthy(not pcall(json.decode, bad), "refuses " .. bad)
  end
  truthy(not pcall(json.encode, 0 / 0), "refuses NaN")
end)

-- --- connecting ------------------------------------------------------------------------------------
test("connect returns at once and connects in poll; connected() after AUTH", function()
  local c, net = new_client()
  eq(#net.socks, 0, "no socket before poll")
  eq(c:connected(), false)
  local events = {}
  c:on("connected", function() events[#events + 1] = "up" end)
  c:poll()
  eq(#net.socks, 1)
  eq(c:connected(), false, "not before AUTH")
  handshake(c, net.sock)
  eq(c:connected(), true)
  eq(events[1], "up")
  local auth = net.sock:commands()[2]
  eq(auth.args, "srv1 k1")
  eq(type(auth.id), "number", "internal commands carry ids too")
end)

test("connect refuses missing options and unknown hosts without raising", function()
  local c, err = ssm.connect({ host = "127.0.0.1" })
  eq(c, nil); truthy(err:find("server_id"), err)
  c, err = ssm.connect({ host = "no-such-host.invalid", server_id = "a", key = "b" })
  eq(c, nil); truthy(err:find("resolve"), err)
end)

test("reconnect backoff: 0.5 s doubling to at most 5 s, reset after AUTH", function()
  local c, net, clock = new_client()
  for _ = 1, 7 do net.connect_answers[#net.connect_answers + 1] = { nil, "connection refused" } end
  local waits = {}
  c:poll()
  for _ = 1, 6 do
    local before = #net.socks
    local t0 = clock.t
    while #net.socks == before do clock.advance(0.25); c:poll() end
    waits[#waits + 1] = string.format("%.2f", clock.t - t0)
  end
  eq(table.concat(waits, " "), "0.50 1.00 2.00 4.00 5.00 5.00")
  -- the 7th attempt fails too; the 8th connects and AUTH resets the backoff
  while #net.socks == 7 do clock.advance(0.25); c:poll() end
  handshake(c, net.sock)
  truthy(c:connected(), "connected")
  net.sock:eof(); c:poll()
  eq(c:connected(), false)
  local t0 = clock.t
  while #net.socks == 8 do clock.advance(0.25); c:poll() end
  eq(string.format("%.2f", clock.t - t0), "0.50")
end)

test("a wrong key stops the client: state failed, queued calls fail", function()
  local c, net = new_client()
  local calls, cb = recorder()
  c:call("message.send", { to = "x", body = "y" }, cb)
  c:poll()
  net.sock:feed({ state = "OK", msg = "CONNECTED serversquaredGlobal" })
  c:poll()
  local cmds = net.sock:commands()
  net.sock:feed({ state = "OK", msg = "Mode: SERVER", id = cmds[1].id })
  net.sock:feed({ state = "ERROR", msg = "Invalid server id or key.", code = "unauthenticated",
                  id = cmds[2].id })
  c:poll()
  eq(c:status().state, "failed")
  eq(calls[1][1], false); eq(calls[1][3], "failed")
  c:poll(); c:poll()
  eq(#net.socks, 1, "no reconnect with a refused key")
end)

-- --- calls and replies -------------------------------------------------------------------------
test("replies are matched by id, with a push arriving while calls are in flight", function()
  local c, net = ready_client()
  local s = net.sock
  local got, pushes = {}, {}
  c:on("message", function(p) pushes[#pushes + 1] = p.data.body end)
  c:call("status.get", { id = "a" }, function(ok, data) got[#got + 1] = "a:" .. tostring(data.who) end)
  c:call("status.get", { id = "b" }, function(ok, data) got[#got + 1] = "b:" .. tostring(data.who) end)
  c:poll()
  local cmds = s:commands()
  local ca, cb_ = cmds[#cmds - 1], cmds[#cmds]
  eq(ca.args.id, "a"); eq(cb_.args.id, "b")
  push(s, "6-0")
  answer(s, cb_, { who = "B" })
  push(s, "7-0")
  answer(s, ca, { who = "A" })
  c:poll()
  eq(table.concat(got, " "), "b:B a:A")
  eq(table.concat(pushes, " "), "b6-0 b7-0")
end)

test("replies without ids (an older relay) are matched in order", function()
  local c, net = ready_client()
  local s = net.sock
  local got = {}
  for i = 1, 3 do
    c:call("status.get", { id = "s" .. i }, function(ok, data) got[#got + 1] = data.n end)
  end
  c:poll()
  push(s, "6-0")
  for i = 1, 3 do s:feed({ state = "OK", msg = "status.get", data = { n = i } }) end
  c:poll()
  eq(table.concat(got, ","), "1,2,3")
end)

test("errors reach the callback as false, message, code", function()
  local c, net = ready_client()
  local calls, cb = recorder()
  c:call("record.top", { board = "nope" }, cb)
  c:poll()
  net.sock:feed({ state = "ERROR", msg = "no board named nope", code = "not_found",
                  id = net.sock:last().id })
  c:poll()
  eq(calls[1][1], false); eq(calls[1][2], "no board named nope"); eq(calls[1][3], "not_found")
end)

test("callbacks run from poll, never inside call", function()
  local c = new_client()
  local calls, cb = recorder()
  c:call("record.top", { board = "x" }, cb) -- a read while disconnected
  eq(#calls, 0)
  c:poll()
  eq(calls[1][1], false); eq(calls[1][2], "disconnected")
end)

test("writes carry idempotency keys, reads none", function()
  local c, net = ready_client()
  c:call("message.send", { to = "x", body = "1" })
  c:call("status.list", {})
  c:call("message.send", { to = "x", body = "2" })
  c:poll()
  local cmds = net.sock:commands()
  local k1, r, k2 = cmds[#cmds - 2], cmds[#cmds - 1], cmds[#cmds]
  truthy(type(k1.idempotency_key) == "string" and #k1.idempotency_key <= 64, "key on a write")
  eq(r.idempotency_key, nil, "no key on a read")
  truthy(k1.idempotency_key ~= k2.idempotency_key, "keys differ")
end)

-- --- the outbox ----------------------------------------------------------------------------------
test("writes made while down wait in order; the oldest is dropped when full", function()
  local c, net = new_client({ outbox_max = 3 })
  local calls = {}
  for i = 1, 5 do
    c:call("message.send", { to = "x", body = "w" .. i },
           function(ok, err) calls[#calls + 1] = i .. ":" .. tostring(ok) .. ":" .. tostring(err) end)
  end
  c:call("status.list", {}, function(ok, err) calls[#calls + 1] = "read:" .. tostring(err) end)
  c:poll()
  eq(table.concat(calls, " "), "1:false:dropped 2:false:dropped read:disconnected")
  handshake(c, net.sock)
  local cmds = net.sock:commands()
  local bodies = {}
  for _, cmd in ipairs(cmds) do
    if cmd.cmd == "message.send" then bodies[#bodies + 1] = cmd.args.body end
  end
  eq(table.concat(bodies, ","), "w3,w4,w5")
  eq(c:status().dropped, 2)
end)

test("a dropped connection fails in-flight reads and keeps in-flight writes", function()
  local c, net = ready_client()
  local calls, cb = recorder()
  local rcalls, rcb = recorder()
  c:call("record.submit", { board = "b", player = "p", score = 3 }, cb)
  c:call("status.list", {}, rcb)
  c:poll()
  local first = net.sock:commands()
  local sent = first[#first - 1]
  eq(sent.cmd, "record.submit")
  net.sock:eof()
  c:poll()
  eq(c:connected(), false)
  eq(rcalls[1][2], "disconnected")
  eq(#calls, 0, "the write is not failed")
  eq(c:status().queued, 1, "it waits for the next connection")
end)

test("in-flight writes go out again, in order, before newer ones, with the same keys", function()
  local c, net, clock = ready_client()
  c:call("message.send", { to = "x", body = "1" })
  c:call("message.send", { to = "x", body = "2" })
  c:poll()
  local before = net.sock:commands()
  local key1, key2 = before[#before - 1].idempotency_key, before[#before].idempotency_key
  net.sock:eof()
  c:poll()
  c:call("message.send", { to = "x", body = "3" })
  clock.advance(0.6)
  c:poll()
  eq(#net.socks, 2)
  handshake(c, net.sock)
  local sends = {}
  for _, cmd in ipairs(net.sock:commands()) do
    if cmd.cmd == "message.send" then sends[#sends + 1] = cmd end
  end
  eq(#sends, 3)
  eq(sends[1].args.body, "1"); eq(sends[1].idempotency_key, key1)
  eq(sends[2].args.body, "2"); eq(sends[2].idempotency_key, key2)
  eq(sends[3].args.body, "3")
  eq(c:status().resent, 2)
end)

test("a write answered unavailable is retried after retry_after; a read fails", function()
  local c, net, clock = ready_client()
  local calls, cb = recorder()
  local rcalls, rcb = recorder()
  c:call("message.send", { to = "x", body = "1" }, cb)
  c:call("status.list", {}, rcb)
  c:poll()
  local cmds = net.sock:commands()
  local w, r = cmds[#cmds - 1], cmds[#cmds]
  for _, cmd in ipairs({ w, r }) do
    net.sock:feed({ state = "ERROR", msg = "storage is unavailable; retry shortly",
                    code = "unavailable", retry_after = 1, id = cmd.id })
  end
  c:poll()
  eq(#calls, 0, "the write waits")
  eq(rcalls[1][3], "unavailable")
  local n = #net.sock:commands()
  clock.advance(0.5); c:poll()
  eq(#net.sock:commands(), n, "not before retry_after")
  clock.advance(0.6); c:poll()
  local again = net.sock:last()
  eq(again.cmd, "message.send"); eq(again.idempotency_key, w.idempotency_key)
  answer(net.sock, again, { id = "m1" })
  c:poll()
  eq(calls[1][1], true); eq(calls[1][2].id, "m1")
end)

test("a write keeps being retried for retry_for_s, then fails", function()
  local c, net, clock = ready_client({ retry_for_s = 10, reply_timeout_s = 1000 })
  local calls, cb = recorder()
  c:call("message.send", { to = "x", body = "1" }, cb)
  c:poll()
  clock.advance(100) -- an answer that took long: the retry window starts at the first refusal
  local tries, answered = 0, nil
  while #calls == 0 and tries < 50 do
    local cmd = net.sock:last()
    if cmd.cmd == "message.send" and cmd.id ~= answered then
      tries, answered = tries + 1, cmd.id
      net.sock:feed({ state = "ERROR", msg = "busy", code = "unavailable", retry_after = 2,
                      id = cmd.id })
    end
    clock.advance(2.5)
    c:poll()
  end
  eq(calls[1][3], "unavailable")
  -- refusals read 0, 5 and 10 s after the first one: the third is past the 10 s window
  eq(tries, 3, "tries")
end)

test("'Idle timeout.' and 'Server shutting down.' are not taken as answers", function()
  local c, net, clock = ready_client()
  local calls, cb = recorder()
  c:call("message.send", { to = "x", body = "1" }, cb)
  c:poll()
  net.sock:feed({ state = "ERROR", msg = "Server shutting down." })
  net.sock:eof()
  c:poll()
  eq(#calls, 0, "the write is kept for the next connection")
  eq(c:connected(), false)
  clock.advance(0.6); c:poll()
  handshake(c, net.sock)
  eq(net.sock:last().cmd, "message.send")
end)

-- --- timers --------------------------------------------------------------------------------------
test("a keepalive (HW) goes out after keepalive_s without sending", function()
  local c, net, clock = ready_client({ keepalive_s = 30 })
  local n = #net.sock:commands()
  clock.advance(29); c:poll()
  eq(#net.sock:commands(), n)
  clock.advance(1.5); c:poll()
  local ka = net.sock:last()
  eq(ka.cmd, "HW")
  net.sock:feed({ state = "OK", msg = "Hello, world!", id = ka.id })
  c:poll()
  eq(c:status().inflight, 0)
  eq(c:status().keepalives, 1)
end)

test("no answer within reply_timeout_s drops the connection", function()
  local c, net, clock = ready_client({ reply_timeout_s = 15 })
  c:call("status.list", {})
  c:poll()
  clock.advance(14); c:poll()
  eq(c:connected(), true)
  clock.advance(2); c:poll()
  eq(c:connected(), false)
  truthy(net.sock.closed, "socket closed")
end)

test("a silent peer (black hole) is dropped after handshake_timeout_s", function()
  local c, net, clock = new_client({ handshake_timeout_s = 10 })
  c:poll()
  clock.advance(9); c:poll()
  eq(#net.socks, 1)
  clock.advance(2); c:poll()
  truthy(net.socks[1].closed, "closed")
  clock.advance(0.6); c:poll()
  eq(#net.socks, 2, "tries again")
end)

test("a connect that never completes is given up after connect_timeout_s", function()
  local c, net, clock = new_client({ connect_timeout_s = 5 })
  for _ = 1, 100 do net.connect_answers[#net.connect_answers + 1] = { nil, "timeout" } end
  c:poll()
  clock.advance(4); c:poll()
  truthy(not net.socks[1].closed, "still trying")
  clock.advance(2); c:poll()
  truthy(net.socks[1].closed, "given up")
end)

test("a poll stops at its budget and goes on next time", function()
  local steps = 0
  local base = 1000
  -- every clock read moves time on by 0.1 ms
  local c, net = new_client({ clock = function() steps = steps + 1; return base + steps * 0.0001 end })
  c:poll()
  handshake(c, net.sock)
  local n = 0
  c:on("message", function() n = n + 1 end)
  for i = 1, 2000 do push(net.sock, (10 + i) .. "-0") end
  c:poll()
  truthy(n > 0 and n < 200, "one poll handled " .. n .. " of 2000")
  local polls = 1
  while n < 2000 and polls < 1000 do c:poll(); polls = polls + 1 end
  eq(n, 2000)
end)

test("an answer of almost 1 MiB (the relay's largest line) still arrives", function()
  local c, net = ready_client()
  local calls, cb = recorder()
  c:call("message.read", {}, cb)
  c:poll()
  local big = string.rep("x", 1024 * 1024 - 200)
  answer(net.sock, net.sock:last(), { messages = {}, note = big })
  for _ = 1, 200 do c:poll(); if #calls > 0 then break end end
  eq(calls[1] and calls[1][1], true, "answered")
  eq(#calls[1][2].note, #big)
end)

test("a line over 1 MiB drops the connection instead of growing the heap", function()
  for _, ending in ipairs({ "", "\r\n" }) do -- endless, or over the bound then ended
    local c, net = ready_client()
    local calls, cb = recorder()
    c:call("message.read", {}, cb)
    c:poll()
    local chunk = string.rep("y", 64 * 1024)
    for _ = 1, 17 do net.sock.inq[#net.sock.inq + 1] = chunk end
    net.sock.inq[#net.sock.inq + 1] = ending
    for _ = 1, 100 do c:poll(); if c:status().state ~= "ready" then break end end
    eq(c:status().state, "wait", "dropped, reconnecting")
    eq(c:status().too_long, 1)
    truthy(#c.inbuf == 0, "buffer freed")
    eq(calls[1] and calls[1][3], "disconnected", "the read in flight fails")
  end
end)

-- --- pushes and RESUME ------------------------------------------------------------------------------
test("RESUME from the last push handled; duplicates skipped", function()
  local c, net, clock = ready_client()
  local got = {}
  c:on("*", function(p) got[#got + 1] = p.id end)
  push(net.sock, "6-0"); push(net.sock, "7-0"); push(net.sock, "7-0")
  c:poll()
  eq(table.concat(got, " "), "6-0 7-0")
  eq(c:last_push_id(), "7-0")
  net.sock:eof(); c:poll()
  clock.advance(0.6); c:poll()
  handshake(c, net.sock, "9-0")
  local resume = net.sock:last()
  eq(resume.cmd, "RESUME"); eq(resume.args, "7-0")
  net.sock:feed({ state = "OK", msg = "Resuming after 7-0.", id = resume.id })
  push(net.sock, "7-0"); push(net.sock, "8-0"); push(net.sock, "9-0")
  c:poll()
  eq(table.concat(got, " "), "6-0 7-0 8-0 9-0")
  eq(c:status().duplicates, 2)
end)

test("first connect resumes nowhere; a reconnect resumes from the AUTH cursor", function()
  local c, net, clock = ready_client()
  for _, cmd in ipairs(net.sock:commands()) do truthy(cmd.cmd ~= "RESUME", "no RESUME") end
  eq(c:last_push_id(), "5-0")
  net.sock:eof(); c:poll(); clock.advance(0.6); c:poll()
  handshake(c, net.sock, "6-0")
  eq(net.sock:last().args, "5-0")
end)

test("resume_from makes the first connect RESUME", function()
  local c, net = new_client({ resume_from = "3-1" })
  c:poll()
  handshake(c, net.sock, "5-0")
  eq(net.sock:last().cmd, "RESUME"); eq(net.sock:last().args, "3-1")
end)

test("live pushes ahead of the replay do not move the resume point past a gap", function()
  local c, net, clock = ready_client()
  push(net.sock, "6-0"); c:poll()
  net.sock:eof(); c:poll(); clock.advance(0.6); c:poll()
  handshake(c, net.sock, "9-0") -- entries 7, 8, 9 came while down
  push(net.sock, "10-0")        -- live, before the replay
  push(net.sock, "7-0")         -- replay starts
  c:poll()
  eq(c:last_push_id(), "7-0", "8 and 9 are not handled yet")
  net.sock:eof(); c:poll(); clock.advance(0.6); c:poll()
  handshake(c, net.sock, "10-0")
  eq(net.sock:last().args, "7-0")
  local got = {}
  c:on("*", function(p) got[#got + 1] = p.id end)
  push(net.sock, "8-0"); push(net.sock, "9-0"); push(net.sock, "10-0")
  c:poll()
  eq(table.concat(got, " "), "8-0 9-0", "10 was handled before and is skipped")
  eq(c:last_push_id(), "10-0")
end)

test("a handler error is logged and does not stop the others", function()
  local logs = {}
  local c, net = ready_client({ log = function(_, m) logs[#logs + 1] = m end })
  local n = 0
  c:on("message", function() error("boom") end)
  c:on("message", function() n = n + 1 end)
  push(net.sock, "6-0"); c:poll()
  eq(n, 1); truthy(logs[#logs]:find("boom"), "logged")
  eq(c:last_push_id(), "6-0")
end)

-- --- bans ----------------------------------------------------------------------------------------
test("ban cache: player, IPv4 and IPv6 ranges, expiry, lifting", function()
  local now = 1000
  local cache = ssm.ban_cache(function() return now end)
  cache:add({ id = "b1", player = "Alice", reason = "cheat", expires_at = 2000 })
  cache:add({ id = "b2", ip = "10.1.0.0/16", reason = "spam" })
  cache:add({ id = "b3", ip = "2001:db8:aa::/48", reason = "spam6" })
  cache:add({ id = "b4", ip = "192.0.2.7", reason = "one" })
  eq(cache:check("alice").banned, true, "name, any case")
  eq(cache:check("bob").banned, false)
  eq(cache:check(nil, "10.1.200.3").banned, true)
  eq(cache:check(nil, "10.2.0.1").banned, false)
  eq(cache:check(nil, "2001:db8:aa:1::5").banned, true)
  eq(cache:check(nil, "2001:db8:ab::5").banned, false)
  eq(cache:check(nil, "192.0.2.7").banned, true)
  eq(cache:check(nil, "192.0.2.8").banned, false)
  eq(#cache:check("alice", "10.1.0.1").bans, 2)
  now = 2000
  eq(cache:check("alice").banned, false, "expired at expires_at")
  cache:lift("b2")
  eq(cache:check(nil, "10.1.200.3").banned, false, "lifted")
end)

test("ban and unban pushes feed the cache; check_ban answers from it while down", function()
  local c, net, clock = ready_client()
  push(net.sock, "6-0", "ban", { id = "6-0", type = "ban", body = "cheat",
       ban = { id = "bn1", player = "Mallory", reason = "cheat", expires_at = clock.t + 60 } })
  push(net.sock, "7-0", "ban", { id = "bn2", ip = "10.9.0.0/16", reason = "spam" })
  c:poll()
  net.sock:eof(); c:poll()
  eq(c:connected(), false)
  local answers = {}
  c:check_ban("mallory", nil, function(ok, a) answers[#answers + 1] = a end)
  c:check_ban("x", "10.9.1.1", function(ok, a) answers[#answers + 1] = a end)
  c:poll()
  eq(answers[1].banned, true); eq(answers[1].cached, true); eq(answers[1].bans[1].reason, "cheat")
  eq(answers[2].banned, true)
  clock.advance(61)
  c:check_ban("mallory", nil, function(ok, a) answers[#answers + 1] = a end)
  c:poll()
  eq(answers[3].banned, false, "expired")
  handshake(c, net.sock, "7-0")
  push(net.sock, "8-0", "unban", { id = "8-0", type = "unban", ban = { id = "bn2" } })
  c:poll()
  eq(c:ban_cache():check(nil, "10.9.1.1").banned, false, "unban lifts it")
end)

test("check_ban learns from answers and forgets bans an answer no longer lists", function()
  local c, net = ready_client()
  local got = {}
  c:check_ban("eve", "10.0.0.1", function(ok, a) got[#got + 1] = a end)
  c:poll()
  local q = net.sock:last()
  eq(q.cmd, "ban.check"); eq(q.args.player, "eve"); eq(q.args.ip, "10.0.0.1")
  answer(net.sock, q, { banned = true, bans = { { id = "z1", player = "eve", reason = "r" } } })
  c:poll()
  eq(got[1].banned, true); eq(got[1].cached, nil)
  eq(c:ban_cache():check("eve").banned, true, "cached")
  c:check_ban("eve", "10.0.0.1", function(ok, a) got[#got + 1] = a end)
  c:poll()
  answer(net.sock, net.sock:last(), { banned = false, bans = {} })
  c:poll()
  eq(c:ban_cache():check("eve").banned, false, "lifted since")
end)

test("check_ban on an error other than unavailable passes it through", function()
  local c, net = ready_client()
  local calls, cb = recorder()
  c:check_ban("eve", nil, cb)
  c:poll()
  net.sock:feed({ state = "ERROR", msg = "Command not found.", id = net.sock:last().id })
  c:poll()
  eq(calls[1][1], false); eq(calls[1][2], "Command not found.")
end)

test("check_name sends name.check with nick and player", function()
  local c, net = ready_client()
  local calls, cb = recorder()
  c:check_name("[TAG]bob", "bob", cb)
  c:poll()
  local q = net.sock:last()
  eq(q.cmd, "name.check"); eq(q.args.nick, "[TAG]bob"); eq(q.args.player, "bob")
  answer(net.sock, q, { allowed = false, reason = "clan_tag", clan = "TAG" })
  c:poll()
  eq(calls[1][2].reason, "clan_tag")
end)

test("wrappers build the operations' arguments", function()
  local c, net = ready_client()
  c:heartbeat({ name = "S", host = "h", port = 1, map = "m", mode = "ctf", players = {},
                max_players = 8, version = "1", public = true })
  c:join("tok", nil); c:join("tok", "1.2.3.4"); c:leave("bob")
  c:submit("b", "bob", 5, nil); c:send_message("*", "hi", nil)
  c:send_mail("bob", "eve", "body", "subj")
  c:poll()
  local cmds = net.sock:commands()
  local n = #cmds
  local hb = cmds[n - 6]
  eq(hb.cmd, "status.update"); eq(hb.args.id, "srv1")
  truthy(net.sock.sent:find('"players":[]', 1, true), "empty players is an array")
  eq(cmds[n - 5].cmd, "presence.join"); eq(cmds[n - 5].args.ip, nil)
  eq(cmds[n - 4].args.ip, "1.2.3.4")
  eq(cmds[n - 3].cmd, "presence.leave"); eq(cmds[n - 3].args.name, "bob")
  eq(cmds[n - 2].cmd, "record.submit"); eq(cmds[n - 2].args.score, 5)
  eq(cmds[n - 1].cmd, "message.send"); eq(cmds[n - 1].args.to, "*")
  eq(cmds[n].cmd, "mail.send"); eq(cmds[n].args.from, "bob"); eq(cmds[n].args.subject, "subj")
end)

test("options.as carries a player's token on that one command only", function()
  local c, net = ready_client()
  local calls, cb = recorder()
  c:call("mail.list", { limit = 5 }, cb, { as = "p.tok-A" })
  c:call("mail.delete", { id = "m1" }, cb, { as = "p.tok-B" })
  c:call("status.list", {}, cb)
  c:poll()
  local cmds = net.sock:commands()
  local n = #cmds
  eq(cmds[n - 2].as, "p.tok-A"); eq(cmds[n - 2].args.limit, 5)
  eq(cmds[n - 1].as, "p.tok-B"); truthy(cmds[n - 1].idempotency_key, "a write keeps its key")
  eq(cmds[n].as, nil, "the next command is the server's own")
  answer(net.sock, cmds[n - 2], nil, { state = "ERROR", msg = "bad token", code = "unauthenticated" })
  c:poll()
  eq(calls[1][1], false); eq(calls[1][3], "unauthenticated")
  eq(c:connected(), true, "the connection keeps its identity")
end)

test("the ban cache is bounded; a check costs the same with 100,000 bans", function()
  local cache = ssm.ban_cache(function() return 1000 end, 1000)
  for i = 1, 5000 do cache:add({ id = "p" .. i, player = "name" .. i, reason = "r" }) end
  eq(cache:count(), 1000, "bounded")
  eq(cache:check("name1").banned, false, "the oldest forgotten")
  eq(cache:check("NAME5000").banned, true, "the newest kept")
  truthy(cache.order:size() <= 2 * 1000 + 64, "the order queue is bounded too")
  local function time_checks(c)
    local t0 = os.clock()
    for i = 1, 2000 do c:check("nobody" .. i, "10.9." .. (i % 250) .. ".1") end
    return (os.clock() - t0) / 2000
  end
  local small, big = ssm.ban_cache(nil, 200000), ssm.ban_cache(nil, 200000)
  for i = 1, 10 do small:add({ id = "s" .. i, player = "p" .. i, ip = "10.1." .. i .. ".0/24" }) end
  for i = 1, 100000 do
    big:add({ id = "b" .. i, player = "p" .. i,
              ip = (i % 2 == 0) and ("10." .. (i % 200) .. "." .. (i % 250) .. ".0/24")
                   or ("2001:db8:" .. string.format("%x", i) .. "::/48") })
  end
  local t_small, t_big = time_checks(small), time_checks(big)
  print(string.format("metric ban_check_us_10 %.2f", t_small * 1e6))
  print(string.format("metric ban_check_us_100000 %.2f", t_big * 1e6))
  truthy(t_big < 1e-3, string.format("a check with 100,000 bans took %.3f ms", t_big * 1e3))
  truthy(t_big < t_small * 20 + 50e-6, "constant: " .. t_small .. " vs " .. t_big)
  eq(big:check("p77").banned, true); eq(big:check(nil, "10.77.27.9").banned, false)
  eq(big:check(nil, "10.76.26.9").banned, true, "a /24 of the 100,000")
  local covering = big:check(nil, "10.76.26.9").bans
  for _, ban in ipairs(covering) do big:lift(ban.id) end
  eq(big:check(nil, "10.76.26.9").banned, false, "lifted from the index")
  eq(big:count(), 100000 - #covering, "each lifted once")
end)

test("close fails what is queued and stops", function()
  local c, net = ready_client()
  local calls, cb = recorder()
  c:call("message.send", { to = "x", body = "1" }, cb)
  c:poll()
  c:close()
  eq(calls[1][2], "closed")
  eq(c:connected(), false)
  truthy(net.sock.closed, "socket closed")
  c:call("status.list", {}, cb); c:poll()
  eq(calls[2][2], "closed")
end)

H.finish()
