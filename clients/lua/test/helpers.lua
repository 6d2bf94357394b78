-- Test helpers shared by the Lua tests: a tiny runner printing `ok <name>` / `fail <name>: why`,
-- and a fake transport (sockets in memory, a clock the test moves) for the pure unit tests.
local H = {}

H.failures = 0

function H.test(name, fn)
  local ok, err = pcall(fn)
  if ok then
    print("ok " .. name)
  else
    H.failures = H.failures + 1
    print("fail " .. name .. ": " .. tostring(err):gsub("\n", " | "))
  end
  io.stdout:flush()
end

function H.eq(a, b, what)
  if a ~= b then
    error((what or "value") .. ": expected " .. tostring(b) .. ", got " .. tostring(a), 2)
  end
end

function H.truthy(v, what)
  if not v then error((what or "condition") .. " is false", 2) end
end

function H.finish()
  print(H.failures == 0 and "all ok" or (H.failures .. " failed"))
  os.exit(H.failures == 0 and 0 or 1)
end

-- --- fake transport ----------------------------------------------------------------------------
-- net.tcp() is handed to ssm.connect{tcp = net.tcp}; every socket it makes is kept in net.socks.
-- net.connect_answers: what connect() returns, in turn (default: connected at once).
function H.fake_net(json)
  local net = { socks = {}, connect_answers = {} }
  function net.tcp()
    local s = { inq = {}, sent = "", closed = false, peer_closed = false, connects = 0 }
    function s.settimeout() end
    function s.connect(self)
      self.connects = self.connects + 1
      local answer = table.remove(net.connect_answers, 1)
      if answer then return unpack(answer) end
      return 1
    end
    function s.receive(self, n)
      if self.closed then return nil, "closed", "" end
      if self.peer_closed then return nil, "closed", "" end
      local parts, size = {}, 0
      while self.inq[1] and size < n do -- what has "arrived", at most n bytes, up to a close
        local d = table.remove(self.inq, 1)
        if d == "<EOF>" then self.peer_closed = true; break end
        if size + #d > n then
          table.insert(self.inq, 1, d:sub(n - size + 1))
          d = d:sub(1, n - size)
        end
        parts[#parts + 1] = d
        size = size + #d
      end
      local data = table.concat(parts)
      if #data == n then return data end
      return nil, self.peer_closed and "closed" or "timeout", data
    end
    function s.send(self, data, i)
      self.sent = self.sent .. data:sub(i or 1)
      return #data
    end
    function s.close(self) self.closed = true end
    -- test side
    function s.feed(self, obj)
      self.inq[#self.inq + 1] = (type(obj) == "string" and obj or json.encode(obj)) .. "\r\n"
    end
    function s.eof(self) self.inq[#self.inq + 1] = "<EOF>" end
    function s.commands(self) -- every JSON command written so far, decoded
      local out = {}
      for line in self.sent:gmatch("([^\n]*)\r\n") do out[#out + 1] = json.decode(line) end
      return out
    end
    function s.last(self)
      local c = self:commands()
      return c[#c]
    end
    net.socks[#net.socks + 1] = s
    net.sock = s
    return s
  end
  return net
end

function H.fake_clock(start)
  local clock = { t = start or 1000 }
  function clock.now() return clock.t end
  function clock.advance(s) clock.t = clock.t + s end
  return clock
end

return H
