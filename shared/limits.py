"""Rate limits: registrations per address, and the login lockout (SPEC §4 "Brute force").

Only a wrong name or password on session.login counts as a failed login. A lock answers
RateLimited with the seconds left. The address lock does not apply to logins made by a
registered server for its players.
"""

from __future__ import annotations

from typing import Any

from shared import keys
from shared.errors import RateLimited
from shared.redis_conn import Lua

# KEYS[1] counter, KEYS[2] lock; ARGV: window seconds, threshold, lock seconds.
# Counts one failure; when the threshold is reached, sets the lock and resets the counter.
COUNT_FAILURE = Lua("""
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if n >= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
  redis.call('DEL', KEYS[1])
end
return n""")


def login_lock_keys(lname: str, ip: str, ip_applies: bool) -> list[str]:
    return [keys.login_lock_name(lname)] + ([keys.login_lock_ip(ip)] if ip_applies else [])


def raise_if_locked(ttls: list[int]) -> None:
    """``ttls`` are the TTLs of the lock keys (negative when absent)."""
    wait = max([t for t in ttls if t and t > 0], default=0)
    if wait:
        raise RateLimited(f"too many failed logins; try again in {wait} s", wait)


def count_login_failure(ctx: Any, lname: str, ip_applies: bool) -> None:
    """Count one failed login for the name and (unless exempt) the address. One round trip."""
    c = ctx.config
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.eval(COUNT_FAILURE.source, 2, keys.login_fails_name(lname), keys.login_lock_name(lname),
              c.login_window, c.login_name_fails, c.login_name_lock)
    if ip_applies:
        pipe.eval(COUNT_FAILURE.source, 2, keys.login_fails_ip(ctx.ip), keys.login_lock_ip(ctx.ip),
                  c.login_window, c.login_ip_fails, c.login_ip_lock)
    pipe.execute()


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
