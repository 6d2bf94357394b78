"""Rate limits: registrations per address, and the login lockout (docs/API.md "Brute force").

A wrong name or password on session.login, and a wrong ``old`` on player.password, count as
failed logins. A lock answers RateLimited with the seconds left. Where a failure counts:

- made directly (no server key): the name's lock and the address's lock;
- made through a game server (its key): that server's lock for the name only, so no server
  can keep a player locked out elsewhere (and the address lock does not apply: one typo-prone
  game server would lock out all of its players). Such a login is also refused while the
  name's own lock is on. And the server's own budget: at most LOGIN_FAILS_PER_SERVER_MINUTE
  failures a minute over all names (README "Abuse budgets"), then every login made with that key is
  refused (429 with Retry-After) until the minute is over; 0 = off.

An attempt is reserved before its password is checked (a "busy" count next to the
failure count), so parallel guesses cannot outrun the lock: while the confirmed failures plus
the attempts in flight already fill a limit, the next one waits (polling every
``BUSY_POLL_S``, at most ``BUSY_WAIT_S``) for those in flight to end, then is judged again: a
lock they caused refuses it, a success lets it through (so 12 parallel correct logins all
succeed), and one still waiting after ``BUSY_WAIT_S`` is refused with Retry-After 1. When the
check ends the reservation is given back, and only a wrong password adds a failure.

Cluster-safe (docs/CLUSTER.md): each limit's keys share one hash tag (the name's ``{p:<name>}``, the
address's ``{ip:<address>}``), and each script touches one limit group. A direct login checks
two groups: their scripts go out together in one pipeline; when one refuses and the other
reserved, the reservation is given back (a refused attempt never counts). Only confirmed
failures lock, so a reservation that is given back can never cause a lock; a process that
dies mid-attempt leaves a reservation that expires after ``BUSY_TTL_MS``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from shared import keys
from shared.config import Config
from shared.errors import RateLimited
from shared.redis_conn import Lua

if TYPE_CHECKING:  # annotations only (dispatch imports storage)
    from shared.dispatch import Ctx

BUSY_TTL_MS = 60_000  # longer than any login takes; frees a dead process's reservation
BUSY_WAIT_S = 5.0  # how long an attempt waits for a full limit's attempts in flight to end
BUSY_POLL_S = 0.05
SERVER_WINDOW_S = 60  # LOGIN_FAILS_PER_SERVER_MINUTE: failures counted per minute

# KEYS: lock, failures, busy of one limit, then locks of the same tag that are only checked.
# ARGV: threshold, busy TTL (ms). Returns the seconds until a lock ends, -1 while failures plus
# attempts in flight fill the limit, else 0 after reserving this attempt.
BEGIN = Lua("""
local wait = 0
for i = 1, #KEYS do
  if i == 1 or i > 3 then
    local ms = redis.call('PTTL', KEYS[i])
    if ms > 0 then wait = math.max(wait, math.ceil(ms / 1000)) end
  end
end
if wait > 0 then return wait end
local n = tonumber(redis.call('GET', KEYS[2]) or '0') + tonumber(redis.call('GET', KEYS[3]) or '0')
if n >= tonumber(ARGV[1]) then return -1 end
redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return 0""")

# KEYS: lock, failures, busy of one limit. ARGV: outcome (fail | reset | back), threshold, lock
# seconds, window seconds. Gives the reservation back; 'fail' counts a failure and locks when
# the threshold is reached, 'reset' starts the count over (a good password for the name).
END = Lua("""
if tonumber(redis.call('GET', KEYS[3]) or '0') > 0 and redis.call('DECR', KEYS[3]) == 0 then
  redis.call('DEL', KEYS[3])
end
if ARGV[1] == 'fail' then
  local n = redis.call('INCR', KEYS[2])
  if n == 1 then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
  if n >= tonumber(ARGV[2]) then
    redis.call('SET', KEYS[1], '1', 'EX', ARGV[3])
    redis.call('DEL', KEYS[2])
  end
elseif ARGV[1] == 'reset' then
  redis.call('DEL', KEYS[2])
end
return 0""")


class LoginGuard:
    """The limits one login attempt for ``lname`` counts toward, and the locks that refuse it,
    chosen by who makes the attempt (a game server, or anyone else)."""

    def __init__(self, ctx: Ctx, lname: str):
        c, via = ctx.config, ctx.caller.id if ctx.caller.kind == "server" else ctx.via or None
        w = c.login_window
        # (lock, failures, busy, threshold, lock seconds, checked locks, reset on success,
        # failure window seconds)
        if via:
            self.limits = [(keys.login_lock_name_via(lname, via),
                            keys.login_fails_name_via(lname, via),
                            keys.login_busy_name_via(lname, via),
                            c.login_name_fails, c.login_name_lock,
                            [keys.login_lock_name(lname)], True, w)]
            if c.login_fails_per_server_minute:
                self.limits.append((keys.login_lock_server(via), keys.login_fails_server(via),
                                    keys.login_busy_server(via),
                                    c.login_fails_per_server_minute, SERVER_WINDOW_S, [],
                                    False, SERVER_WINDOW_S))
        else:
            self.limits = [(keys.login_lock_name(lname), keys.login_fails_name(lname),
                            keys.login_busy_name(lname), c.login_name_fails, c.login_name_lock,
                            [], True, w),
                           (keys.login_lock_ip(ctx.ip), keys.login_fails_ip(ctx.ip),
                            keys.login_busy_ip(ctx.ip), c.login_ip_fails, c.login_ip_lock,
                            [], False, w)]
        self.redis = ctx.redis

    def begin(self, pipe: Any) -> int:
        """Queue on ``pipe`` the lock checks that also reserve this attempt, one script per
        limit; returns how many replies they take (first in ``pipe``'s results), for
        :meth:`admit`."""
        for lock, fails, busy, threshold, _, checked, _, _ in self.limits:
            BEGIN(self.redis, [lock, fails, busy, *checked], [threshold, BUSY_TTL_MS],
                  pipeline=pipe)
        return len(self.limits)

    def admit(self, replies: list) -> None:
        """Returns once every limit reserved this attempt (:meth:`begin`'s ``replies``);
        RateLimited when one is locked. While a limit is only full of attempts in flight, the
        reservations made are given back and the checks run again after a short wait, until
        they pass, a lock refuses, or ``BUSY_WAIT_S`` is over (then RateLimited, 1 s)."""
        deadline = time.monotonic() + BUSY_WAIT_S
        while True:
            codes = [int(w) for w in replies]
            if all(code == 0 for code in codes):
                return
            self._end(["back" if code == 0 else None for code in codes]).execute()
            wait = max(codes)
            if wait > 0:
                raise RateLimited(f"too many failed logins; try again in {wait} s", wait)
            if time.monotonic() + BUSY_POLL_S > deadline:
                raise RateLimited("too many logins in progress; try again in 1 s", 1)
            time.sleep(BUSY_POLL_S)  # the attempts in flight end within a password check
            pipe = self.redis.pipeline(transaction=False)
            self.begin(pipe)
            replies = pipe.execute()

    def failed(self, r: Any) -> None:
        """A wrong name or password: count it, lock what reached its limit. One round trip."""
        self._end(["fail"] * len(self.limits), r.pipeline(transaction=False)).execute()

    def succeeded(self, pipe: Any) -> None:
        """Queue on ``pipe`` the success bookkeeping (reservations back, the name's count
        reset)."""
        self._end(["reset" if limit[6] else "back" for limit in self.limits], pipe)

    def _end(self, outcomes: list[str | None], pipe: Any = None) -> Any:
        """Queue :data:`END` for each limit with an outcome on ``pipe`` (default: a new
        non-transactional pipeline, returned for the caller to execute)."""
        pipe = pipe if pipe is not None else self.redis.pipeline(transaction=False)
        for (lock, fails, busy, threshold, secs, _, _, window), outcome in zip(
                self.limits, outcomes, strict=True):
            if outcome:
                END(self.redis, [lock, fails, busy], [outcome, threshold, secs, window],
                    pipeline=pipe)
        return pipe


def count_registration(ctx: Ctx) -> None:
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


def spend(r: Any, key_of: Any, limit: int, window: int, now: float, what: str) -> None:
    """Count one unit of a fixed-window budget: at most ``limit`` per clock window of
    ``window`` seconds (``key_of(window number)`` is the counter); RateLimited with the seconds
    to the window's end past it. ``limit`` 0 = off. One round trip."""
    if limit:
        judge(queue_spend(r.pipeline(transaction=False), key_of, window, now).execute()[0],
              limit, window, now, what)


def queue_spend(pipe: Any, key_of: Any, window: int, now: float) -> Any:
    """Queue on ``pipe`` the count of :func:`spend` (two replies, the count first); the caller
    executes it and passes the count to :func:`judge`."""
    key = key_of(int(now) // window)
    pipe.incr(key)
    pipe.expire(key, window + 60)
    return pipe


def judge(count: int, limit: int, window: int, now: float, what: str) -> None:
    """RateLimited when ``count`` (from :func:`queue_spend`) passed ``limit`` (0 = off)."""
    if limit and count > limit:
        raise RateLimited(f"at most {limit} {what}", (int(now) // window + 1) * window - int(now))


MODERATION = "moderation writes (ban.create, ban.lift) per server key per minute"


def moderation_key(ctx: Ctx) -> Any:
    """The counter of the caller's moderation writes (MOD_WRITES_PER_SERVER_MINUTE), by
    minute; ban.create counts with its checks, ban.lift in its script (shared/storage/bans)."""
    return lambda n: keys.moderation_budget(ctx.caller.id, n)


def count_server_registration(ctx: Ctx) -> None:
    """A registration made with a server key: at most REGISTER_LIMIT_PER_SERVER_HOUR per
    clock hour (README "Abuse budgets")."""
    spend(ctx.redis, lambda n: keys.server_budget(ctx.caller.id, "reg", n),
          ctx.config.register_limit_per_server_hour, 3600, ctx.now(),
          "registrations per server key per hour")


# Mail send budget (README "Abuse budgets"), one script on the sender's group. KEYS: minute counter,
# day counter, the sender's account. ARGV: now (s), per minute, per day, per day while new, new
# account age (s), day end (s), 'take' | 'back'. 'take' answers the seconds to wait when a
# budget is spent (nothing counted), else 0 after counting this send; 'back' gives a counted
# send back (the mail was refused after all).
MAIL_BUDGET = Lua("""
if ARGV[7] == 'back' then
  for i = 1, 2 do
    if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
  end
  return 0
end
local now, minute, day = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local fresh, age, day_end = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local m = tonumber(redis.call('GET', KEYS[1]) or '0')
local d = tonumber(redis.call('GET', KEYS[2]) or '0')
local wait = 0
if minute > 0 and m >= minute then wait = 60 - now % 60 end
if day > 0 and d >= day then wait = math.max(wait, day_end - now) end
if fresh > 0 and d >= fresh then
  local created = tonumber(redis.call('HGET', KEYS[3], 'created') or '0')
  if created + age > now then wait = math.max(wait, math.min(created + age, day_end) - now) end
end
if wait > 0 then return wait end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], 120)
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], 86400 + 3600)
return 0""")
NEW_ACCOUNT_SECONDS = 3600  # an account younger than this has MAIL_SEND_PER_DAY_NEW_ACCOUNT


def _mail_budget(r: Any, config: Config, lname: str, now: float, how: str) -> int:
    now_s = int(now)
    minute, day = now_s // 60, now_s // 86400
    return int(MAIL_BUDGET(r, [keys.mail_sent(lname, "m", minute), keys.mail_sent(lname, "d", day),
                               keys.player(lname)],
                           [now_s, config.mail_send_per_minute, config.mail_send_per_day,
                            config.mail_send_per_day_new_account, NEW_ACCOUNT_SECONDS,
                            (day + 1) * 86400, how]))


def mail_budget_take(r: Any, config: Config, lname: str, now: float) -> int:
    """Count one mail sent by ``lname``; returns 0, or the seconds to wait when a budget is
    spent (then nothing is counted). One round trip."""
    if not (config.mail_send_per_minute or config.mail_send_per_day
            or config.mail_send_per_day_new_account):
        return 0
    return _mail_budget(r, config, lname, now, "take")


def mail_budget_back(r: Any, config: Config, lname: str, now: float) -> None:
    """Give back a send counted by :func:`mail_budget_take` whose mail was refused."""
    _mail_budget(r, config, lname, now, "back")
