"""Rate limits: registrations per address, and the login lockout (SPEC §4 "Brute force").

Only a wrong name or password on session.login counts as a failed login. A lock answers
RateLimited with the seconds left. The address lock does not apply to logins made by a
registered server for its players. An attempt is counted before its password is checked (and
given back when it succeeds), so parallel guesses cannot outrun the lock: while the attempts in
flight already fill a limit, the next one is refused with Retry-After 1.
"""

from __future__ import annotations

from typing import Any

from shared import keys
from shared.errors import RateLimited
from shared.redis_conn import Lua

# Both scripts take KEYS = (lock, counter) per limit: the name, then (unless exempt) the
# address; ARGV = window seconds, then (threshold, lock seconds) per limit.
# BEGIN refuses while a lock is on (returns the seconds left) or while attempts in flight
# already fill a limit (returns 1); otherwise it counts this attempt as a failure up front
# (returns 0). Counting before the password check means a burst of parallel guesses gets no
# more password checks than the limit allows; a success takes its count back.
BEGIN_LOGIN = Lua("""
local wait = 0
for k = 0, #KEYS / 2 - 1 do
  local ms = redis.call('PTTL', KEYS[2 * k + 1])
  if ms > 0 then wait = math.max(wait, math.ceil(ms / 1000)) end
end
if wait > 0 then return wait end
for k = 0, #KEYS / 2 - 1 do
  local n = tonumber(redis.call('GET', KEYS[2 * k + 2]) or '0')
  if n >= tonumber(ARGV[2 * k + 2]) then return 1 end
end
for k = 0, #KEYS / 2 - 1 do
  if redis.call('INCR', KEYS[2 * k + 2]) == 1 then
    redis.call('EXPIRE', KEYS[2 * k + 2], ARGV[1])
  end
end
return 0""")

# A confirmed failure (already counted by BEGIN): lock each limit whose count is reached.
FAILED_LOGIN = Lua("""
for k = 0, #KEYS / 2 - 1 do
  local n = tonumber(redis.call('GET', KEYS[2 * k + 2]) or '0')
  if n >= tonumber(ARGV[2 * k + 2]) then
    redis.call('SET', KEYS[2 * k + 1], '1', 'EX', ARGV[2 * k + 3])
    redis.call('DEL', KEYS[2 * k + 2])
  end
end
return 0""")

# A success: the name's count starts over; the address gets its attempt back.
# KEYS: name counter, then the address counter unless exempt.
GOOD_LOGIN = Lua("""
redis.call('DEL', KEYS[1])
if KEYS[2] and tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then
  redis.call('DECR', KEYS[2])
end
return 0""")


def _login_limits(ctx: Any, lname: str, ip_applies: bool) -> tuple[list[str], list[int]]:
    c = ctx.config
    ks = [keys.login_lock_name(lname), keys.login_fails_name(lname)]
    argv = [c.login_window, c.login_name_fails, c.login_name_lock]
    if ip_applies:
        ks += [keys.login_lock_ip(ctx.ip), keys.login_fails_ip(ctx.ip)]
        argv += [c.login_ip_fails, c.login_ip_lock]
    return ks, argv


def begin_login(pipe: Any, ctx: Any, lname: str, ip_applies: bool) -> None:
    """Queue on ``pipe`` the lock check that also counts this attempt; its reply goes to
    :func:`raise_if_refused`. Only whoever created ``pipe`` executes it."""
    ks, argv = _login_limits(ctx, lname, ip_applies)
    pipe.eval(BEGIN_LOGIN.source, len(ks), *ks, *argv)


def raise_if_refused(wait: int) -> None:
    """``wait``: BEGIN_LOGIN's reply, seconds until an attempt may be made (0: go ahead)."""
    if wait:
        raise RateLimited(f"too many failed logins; try again in {wait} s", int(wait))


def login_failed(ctx: Any, lname: str, ip_applies: bool) -> None:
    """A wrong name or password: lock what reached its limit. One round trip."""
    ks, argv = _login_limits(ctx, lname, ip_applies)
    FAILED_LOGIN(ctx.redis, ks, argv)


def login_succeeded(tx: Any, ctx: Any, lname: str, ip_applies: bool) -> None:
    """Queue on ``tx`` the success bookkeeping (name count reset, address attempt returned)."""
    ks = [keys.login_fails_name(lname)] + ([keys.login_fails_ip(ctx.ip)] if ip_applies else [])
    tx.eval(GOOD_LOGIN.source, len(ks), *ks)


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
