-- c:call(op, args, cb, {as = token}) against a real relay (driven by tests/test_lua_module.py).
-- Usage: lua5.1 as_live.lua '<json: port, server_id, key, mail_id, alice, bob, revoked>'
local dir = (arg and arg[0] or ""):match("^(.*/)") or "./"
package.path = dir .. "../?.lua;" .. package.path
local ssm = require("ssmglobal")
local socket = require("socket")
local cfg = ssm.json.decode(arg[1])

local c = assert(ssm.connect({ host = "127.0.0.1", port = cfg.port, server_id = cfg.server_id,
                               key = cfg.key }))
local deadline = socket.gettime() + 20
local function run_until(cond)
  while not cond() do
    assert(socket.gettime() < deadline, "timed out")
    c:poll()
    socket.sleep(0.002)
  end
end
run_until(function() return c:connected() end)

local out, pending = {}, 0
local function ask(label, op, args, as)
  pending = pending + 1
  c:call(op, args, function(ok, data, code)
    out[label] = { ok = ok, code = code or ssm.json.null,
                   from = ok and type(data) == "table" and data["from"] or ssm.json.null }
    pending = pending - 1
  end, as and { as = as } or nil)
end
ask("own", "mail.read", { id = cfg.mail_id }, cfg.alice)
ask("other", "mail.read", { id = cfg.mail_id }, cfg.bob)
ask("revoked", "mail.list", {}, cfg.revoked)
ask("server", "status.list", {})
ask("own_again", "mail.list", {}, cfg.alice)
run_until(function() return pending == 0 end)
out.connected = c:connected()
out.disconnects = c:status().disconnects
print("data " .. ssm.json.encode(out))
c:close()
