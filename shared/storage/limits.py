"""Rate limits: registrations per address, and the login lockout (SPEC §4 "Brute force").

A wrong name or password on session.login, and a wrong ``old`` on player.password, count as
failed logins. A lock answers RateLimited with the seconds left. Where a failure counts:

- made directly (no server key): the name's lock and the address's lock;
- made through a game server (its key): that server's lock for the name only, so no server
  can keep a player locked out elsewhere (and the address lock does not apply: one typo-prone
  game server would lock out all of its players). Such a login is also refused while the
  name's own lock is on.

An attempt is counted before its password is checked (and given back when it succeeds), so
parallel guesses cannot outrun the lock: while the attempts in flight already fill a limit,
the next one is refused with Retry-After 1.
"""

from __future__ import annotations

from typing import Any

from shared import keys
from shared.errors import RateLimited
from shared.redis_conn import Lua

# KEYS: (lock, counter) per counted limit, then locks that are only checked.
# ARGV: window seconds, number of counted limits, then (threshold, lock seconds) per limit.
# Refuses while any lock is on (returns the seconds left) or while attempts in flight already
# fill a counted limit (returns 1); otherwise counts this attempt as a failure up front
# (returns 0). Counting before the password check means a burst of parallel guesses gets no
# more password checks than the limit allows; a success takes its count back.
BEGIN_LOGIN = Lua("""
local n = tonumber(ARGV[2])
local wait = 0
for i = 1, #KEYS do
  if i > 2 * n or i % 2 == 1 then
    local ms = redis.call('PTTL', KEYS[i])
    if ms > 0 then wait = math.max(wait, math.ceil(ms / 1000)) end
  end
end
if wait > 0 then return wait end
for k = 0, n - 1 do
  local count = tonumber(redis.call('GET', KEYS[2 * k + 2]) or '0')
  if count >= tonumber(ARGV[2 * k + 3]) then return 1 end
end
for k = 0, n - 1 do
  if redis.call('INCR', KEYS[2 * k + 2]) == 1 then
    redis.call('EXPIRE', KEYS[2 * k + 2], ARGV[1])
  end
end
return 0""")

# A confirmed failure (already counted by BEGIN): lock each limit whose count is reached.
# KEYS: (lock, counter) per counted limit; ARGV: (threshold, lock seconds) per limit.
FAILED_LOGIN = Lua("""
for k = 0, #KEYS / 2 - 1 do
  local count = tonumber(redis.call('GET', KEYS[2 * k + 2]) or '0')
  if count >= tonumber(ARGV[2 * k + 1]) then
    redis.call('SET', KEYS[2 * k + 1], '1', 'EX', ARGV[2 * k + 2])
    redis.call('DEL', KEYS[2 * k + 2])
  end
end
return 0""")

# A success: the name's count (in the scope the attempt counted in) starts over; the address
# gets its attempt back. KEYS: name counter, then the address counter if it counted.
GOOD_LOGIN = Lua("""
redis.call('DEL', KEYS[1])
if KEYS[2] and tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then
  redis.call('DECR', KEYS[2])
end
return 0""")


class LoginGuard:
    """The limits one login attempt for ``lname`` counts toward, and the locks that refuse it,
    chosen by who makes the attempt (a game server, or anyone else)."""

    def __init__(self, ctx: Any, lname: str):
        c, via = ctx.config, ctx.caller.id if ctx.caller.kind == "server" else None
        if via:
            self.counted = [(keys.login_lock_name_via(lname, via),
                             keys.login_fails_name_via(lname, via),
                             c.login_name_fails, c.login_name_lock)]
            self.checked = [keys.login_lock_name(lname)]
        else:
            self.counted = [(keys.login_lock_name(lname), keys.login_fails_name(lname),
                             c.login_name_fails, c.login_name_lock),
                            (keys.login_lock_ip(ctx.ip), keys.login_fails_ip(ctx.ip),
                             c.login_ip_fails, c.login_ip_lock)]
            self.checked = []
        self.window = c.login_window

    def begin(self, pipe: Any) -> None:
        """Queue on ``pipe`` the lock check that also counts this attempt; its reply goes to
        :func:`raise_if_refused`. Only whoever created ``pipe`` executes it."""
        ks = [k for lock, fails, _, _ in self.counted for k in (lock, fails)] + self.checked
        argv = [self.window, len(self.counted)]
        argv += [v for _, _, fails, secs in self.counted for v in (fails, secs)]
        pipe.eval(BEGIN_LOGIN.source, len(ks), *ks, *argv)

    def failed(self, r: Any) -> None:
        """A wrong name or password: lock what reached its limit. One round trip."""
        ks = [k for lock, fails, _, _ in self.counted for k in (lock, fails)]
        FAILED_LOGIN(r, ks, [v for _, _, fails, secs in self.counted for v in (fails, secs)])

    def succeeded(self, tx: Any) -> None:
        """Queue on ``tx`` the success bookkeeping (name count reset, address attempt back)."""
        ks = [fails for _, fails, _, _ in self.counted]
        tx.eval(GOOD_LOGIN.source, len(ks), *ks)


def raise_if_refused(wait: int) -> None:
    """``wait``: BEGIN_LOGIN's reply, seconds until an attempt may be made (0: go ahead)."""
    if wait:
        raise RateLimited(f"too many failed logins; try again in {wait} s", int(wait))


def count_registration(ctx: Any) -> None:
    """Count a registration from ``ctx.ip``; RateLimited past the hourly limit. One round trip."""
    limit = ctx.config.register_limit_per_ip_hour
    if not limit:
        return
    now = int(ctx.now())
    hour = now // 3600
    pipe = ctx.redis.pipeline(transaction=False)
    key = keys.register_count(ctx.ip, hour)
    pipe.incr(key)
    pipe.expire(key, 3700)
    count, _ = pipe.execute()
    if count > limit:
        raise RateLimited(f"at most {limit} registrations per address per hour",
                          (hour + 1) * 3600 - now)
