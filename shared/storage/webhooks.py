"""Webhooks: the hooks, their last 50 delivery attempts and the delivery counts, all in the
``{hooks}`` group (keys in shared/keys.py); docs/WEBHOOKS.md.

A webhook is a hash (url, events, format, secret, created, dropped, and while its endpoint is
failing ``down_until``) plus its id in the id set, and a set of its attempts in flight. The
secret is stored as given (an HMAC needs it) and shown only in ``webhook.create``'s answer.
Attempts are recorded by the delivery job (``record``): LPUSH + LTRIM 50 on the webhook's log,
and a count by outcome.
"""

from __future__ import annotations

import json
from typing import Any

from shared import keys
from shared.redis_conn import Lua

DELIVERIES_KEPT = 50
OUTCOMES = ("delivered", "failed", "dropped")

# KEYS: id set. ARGV: the webhook key around the id. Returns {field list of each webhook}.
LIST = Lua("""
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local h = redis.call('HGETALL', ARGV[1] .. id .. ARGV[2])
  if #h > 0 then out[#out + 1] = h end
end
return out""")

# KEYS: hash, log, counts, in-flight zset. ARGV: attempt JSON, outcome, kept, down_until (''
# clears it, '-' leaves it), job id. Returns 0 when the webhook is gone (nothing recorded).
RECORD = Lua("""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
if ARGV[2] == 'dropped' then redis.call('HINCRBY', KEYS[1], 'dropped', 1) end
if ARGV[4] == '' then redis.call('HDEL', KEYS[1], 'down_until')
elseif ARGV[4] ~= '-' then redis.call('HSET', KEYS[1], 'down_until', ARGV[4]) end
redis.call('ZREM', KEYS[4], ARGV[5])
return 1""")

# KEYS: hash, in-flight zset. ARGV: now (ms), suspect (ms), stale (ms), job id. Returns 1 and
# registers the attempt when it may go: not while down_until is ahead; while failing, only
# when no other attempt is waiting (one probe at a time); while healthy, unless an attempt has
# waited more than ``suspect`` for its answer.
ADMIT = Lua("""
local now = tonumber(ARGV[1])
local down = redis.call('HGET', KEYS[1], 'down_until')
if not redis.call('HGET', KEYS[1], 'id') then return 0 end
if down and tonumber(down) > now then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]))
local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #oldest > 0 and (down or tonumber(oldest[2]) < now - tonumber(ARGV[2])) then return 0 end
redis.call('ZADD', KEYS[2], now, ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1""")


def create(r: Any, webhook_id: str, url: str, events: list[str], fmt: str, secret: str,
           created_ms: int) -> None:
    """Store a new webhook. One round trip (MULTI)."""
    tx = r.pipeline()
    tx.hset(keys.webhook(webhook_id), mapping={
        "id": webhook_id, "url": url, "events": ",".join(events), "format": fmt,
        "secret": secret, "created": created_ms, "dropped": 0})
    tx.sadd(keys.webhook_ids(), webhook_id)
    tx.execute()


def _decode(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def all_hooks(r: Any) -> list[dict[str, str]]:
    """Every webhook's stored fields (secret included), oldest first. One round trip."""
    hooks = [_decode(h) for h in LIST(r, [keys.webhook_ids()],
                                      keys.around(keys.webhook(keys.HOLE)))]
    return sorted(hooks, key=lambda h: (int(h.get("created") or 0), h.get("id", "")))


def public(hook: dict[str, str]) -> dict[str, Any]:
    """A webhook as webhook.list shows it: never its secret."""
    return {"id": hook["id"], "url": hook["url"], "events": events_of(hook),
            "format": hook.get("format", "json"), "created": int(hook["created"]) // 1000,
            "dropped": int(hook.get("dropped") or 0)}


def events_of(hook: dict[str, str]) -> list[str]:
    return [e for e in hook.get("events", "").split(",") if e]


def get(r: Any, webhook_id: str) -> dict[str, str] | None:
    return r.hgetall(keys.webhook(webhook_id)) or None


def delete(r: Any, webhook_id: str) -> bool:
    """Remove a webhook and its log; False when there was none. One round trip (MULTI)."""
    tx = r.pipeline()
    tx.srem(keys.webhook_ids(), webhook_id)
    for key in (keys.webhook(webhook_id), keys.webhook_deliveries(webhook_id),
                keys.webhook_inflight(webhook_id)):
        tx.delete(key)  # one key per DEL: a cluster pipeline takes no more
    removed, *deleted = tx.execute()
    return bool(removed or any(deleted))


def deliveries(r: Any, webhook_id: str) -> list[dict[str, Any]] | None:
    """The last attempts, newest first; None when there is no such webhook. One round trip."""
    pipe = r.pipeline(transaction=False)
    pipe.exists(keys.webhook(webhook_id))
    pipe.lrange(keys.webhook_deliveries(webhook_id), 0, DELIVERIES_KEPT - 1)
    exists, raw = pipe.execute()
    return [json.loads(x) for x in raw] if exists else None


def record(r: Any, webhook_id: str, job_id: str, attempt: dict[str, Any], outcome: str,
           down_until_ms: int | None | str = "-") -> bool:
    """Log one attempt and count its outcome; ``down_until_ms``: when the next attempt may go
    (after a failure), None once delivered (clears it), "-" to leave it. Ends the attempt's
    in-flight entry. False when the webhook was deleted meanwhile. One round trip."""
    assert outcome in OUTCOMES
    down = "" if down_until_ms is None else str(down_until_ms)
    return RECORD(r, [keys.webhook(webhook_id), keys.webhook_deliveries(webhook_id),
                      keys.webhook_counts(), keys.webhook_inflight(webhook_id)],
                  [json.dumps(attempt), outcome, DELIVERIES_KEPT, down, job_id]) == 1


def admit(r: Any, webhook_id: str, job_id: str, now_ms: int, suspect_ms: int,
          stale_ms: int) -> bool:
    """Whether a delivery may try the endpoint now (and if so, it is registered in flight).
    Healthy: yes, unless an attempt has waited over ``suspect_ms`` for an answer. Failing
    (``down_until`` set by a failure): not before then, and then one attempt at a time. So a
    dead endpoint holds one delivery slot, not every slot. One round trip."""
    return ADMIT(r, [keys.webhook(webhook_id), keys.webhook_inflight(webhook_id)],
                 [now_ms, suspect_ms, stale_ms, job_id]) == 1


def counts(r: Any) -> dict[str, int]:
    """Attempts of all webhooks by outcome, all time."""
    got = r.hgetall(keys.webhook_counts())
    return {o: int(got.get(o) or 0) for o in OUTCOMES}


# KEYS: hash, counts. ARGV: how many. Counts deliveries dropped before any attempt (the
# delivery queue over WEBHOOK_QUEUE_MAX), when the webhook still exists.
DROPPED = Lua("""
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'dropped', ARGV[1]) end
redis.call('HINCRBY', KEYS[2], 'dropped', ARGV[1])
return 0""")


def count_dropped(r: Any, per_webhook: dict[str, int]) -> None:
    """Count deliveries dropped unattempted, per webhook (``webhook.list``'s ``dropped``, the
    delivery metrics' ``dropped``). One round trip."""
    pipe = r.pipeline(transaction=False)
    for webhook_id, n in per_webhook.items():
        DROPPED(r, [keys.webhook(webhook_id), keys.webhook_counts()], [n], pipeline=pipe)
    pipe.execute()
