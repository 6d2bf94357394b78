"""Player mailboxes: storage scripts shared by the mail operations, and the mail notices.

A mailbox is ``keys.mailbox`` (zset: mail id -> sequence, newest highest), ``keys.mailbox_unread``
(the unread subset) and one hash per mail (``keys.mail``: id, from, subject, body, at, read).
Mail ids are 12 random base-36 characters; the sequence (``keys.mail_seq``) orders a mailbox
and is the paging cursor of ``mail.list``.

Notices (docs/WORKERS.md / docs/CLUSTER.md: each pushed once, none lost). ``mail.send`` adds
``<id>:<lname>`` to the
outbox (``keys.mail_outbox``) before it stores the mail, and queues the notice job after; the
job removes the entry when it is done, and the worker re-queues the notice of an entry older
than :func:`outbox_grace_ms` (a web process that died in between). A notice job runs ordered
steps, each on one hash tag: read the mail and the account (the recipient's slot), check the
heartbeat (``{status}``), append the notice with its marker in one script (``{msg}``,
``messages.send_once``: a retry never appends it twice), mark it in the recipient's slot, and
last take the outbox entry out.
"""

from __future__ import annotations

import os
import time
from typing import Any

from shared import keys, lua, queues
from shared.config import Config
from shared.redis_conn import Lua, Ordered
from shared.storage import messages

MAIL_ID = r"[a-z0-9]{1,32}"
NOTICE_AT_TTL_MS = 86400 * 1000
OUTBOX_MAX_AGE_MS = 86400 * 1000  # an entry still there after a day is given up

# KEYS: 1 recipient account, 2 mailbox, 3 unread, 4 sequence, 5 mail hash, 6 the recipient's
#       blocked senders (one slot)
# ARGV: 1 mail id, 2 subject, 3 body, 4 at, 5 mailbox cap, 6 sender display name,
#       7 unread cap per sender (0 = none), 8 mail hash key prefix, 9 sender's lowercase name,
#       10 '1' to check only (nothing is written)
# Returns {'ok', from} or {'refused', reason}; the checks in order: not_found, blocked,
# mailbox_full, too_many_unread.
# Unread mails per sender are counted, not kept in a counter: only when the mailbox holds at
# least cap unread mails (so at most MAILBOX_MAX lookups), by the stored ``from`` (the sender's
# display name; names are unique case-insensitively). Nothing to keep in step on read, delete
# or player.delete.
STORE = Lua("""
local from = ARGV[6]
if redis.call('HEXISTS', KEYS[1], 'id') == 0 then return {'refused', 'not_found'} end
if redis.call('HEXISTS', KEYS[6], ARGV[9]) == 1 then return {'refused', 'blocked'} end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return {'refused', 'mailbox_full'} end
local per = tonumber(ARGV[7])
if per > 0 and redis.call('ZCARD', KEYS[3]) >= per then
  local me, n = string.lower(from), 0
  for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
    local sender = redis.call('HGET', ARGV[8] .. id, 'from')
    if sender and string.lower(sender) == me then
      n = n + 1
      if n >= per then return {'refused', 'too_many_unread'} end
    end
  end
end
if ARGV[10] == '1' then return {'ok', from} end
if redis.call('EXISTS', KEYS[5]) == 1 then return {'refused', 'id_taken'} end
local seq = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[5], 'id', ARGV[1], 'from', from, 'subject', ARGV[2], 'body', ARGV[3],
           'at', ARGV[4], 'read', '0')
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('ZADD', KEYS[3], seq, ARGV[1])
return {'ok', from}""")


def store_with_notice(r: Any, lname: str, mail_id: str, fields: dict[str, Any],
                      sender_lname: str, server_id: str, live_cutoff_ms: int, cap: int,
                      unread_per_sender: int = 0, queue: Any = None,
                      exit_after_store: bool = False) -> list:
    """Store a mail and queue its live notice (on ``queue``, default ``r``), in ordered steps:
    the sender check (a server sending for ``sender_lname``), the outbox entry, the mail, the
    notice job. On one Redis the last three are one MULTI/EXEC.

    Returns ``['ok', from]`` or ``['refused', reason]`` (then the mail is not stored, and its
    notice job and outbox entry are taken back). ``exit_after_store``: tests only, the process
    ends right after the mail is stored.
    """
    queue = r if queue is None else queue
    if server_id:
        fields = {**fields, "from": sender_name(r, sender_lname, server_id, live_cutoff_ms)}
        if fields["from"] is None:
            return ["refused", "not_online"]
    steps = Ordered(r)
    add_outbox(steps.pipe, lname, mail_id)
    store_mail(steps.then().pipe, r, lname, mail_id, fields, cap, unread_per_sender)
    if exit_after_store:
        steps.execute()
        os._exit(3)
    got = queues.enqueue_after(
        steps, queue, lambda pipe: queues.enqueue_mail_notice(queue, lname, mail_id, pipe),
        ok=lambda replies: replies[1][0] == "ok",
        cancel=lambda: queues.cancel_mail_notice(queue, lname, mail_id))[1]
    if got[0] != "ok":
        outbox_done(r, lname, mail_id)
    return got


def sender_name(r: Any, sender_lname: str, server_id: str, live_cutoff_ms: int) -> str | None:
    """The display name of ``sender_lname`` when they are online on the live server
    ``server_id`` (a server sending for a player), else None. One round trip (a read of the
    sender's account and of the heartbeat: two slots, a check before any write)."""
    pipe = r.pipeline(transaction=False)
    pipe.hmget(keys.player(sender_lname), "name", "server")
    pipe.zscore(keys.status_live(), server_id)
    (name, at), beat = pipe.execute()
    if not name or at != server_id or beat is None or beat < live_cutoff_ms:
        return None
    return name


def outbox_member(lname: str, mail_id: str) -> str:
    return f"{mail_id}:{lname}"


def add_outbox(pipe: Any, lname: str, mail_id: str) -> None:
    """Queue on ``pipe`` the outbox entry of a mail about to be stored: it must exist before
    the mail does (a superset; the notice job takes it out)."""
    pipe.zadd(keys.mail_outbox(), {outbox_member(lname, mail_id): int(time.time() * 1000)})


def store_mail(pipe: Any, r: Any, lname: str, mail_id: str, fields: dict[str, Any], cap: int,
               unread_per_sender: int = 0, check_only: bool = False) -> Any:
    """Queue :data:`STORE` on ``pipe`` (the recipient's slot; run it now when ``pipe`` is
    None)."""
    return STORE(r, [keys.player(lname), keys.mailbox(lname), keys.mailbox_unread(lname),
                     keys.mail_seq(lname), keys.mail(lname, mail_id), keys.mail_blocked(lname)],
                 [mail_id, fields["subject"], fields["body"], fields["at"], cap, fields["from"],
                  unread_per_sender, keys.mail(lname, ""), fields["from"].lower(),
                  1 if check_only else 0], pipeline=pipe)


def refusal(r: Any, lname: str, sender_lname: str, cap: int, unread_per_sender: int) -> str | None:
    """What :data:`STORE` would refuse a mail from ``sender_lname`` to ``lname`` for now
    (``not_found``, ``blocked``, ``mailbox_full``, ``too_many_unread``), or None; writes
    nothing. One round trip."""
    got = store_mail(None, r, lname, "-", {"subject": "", "body": "", "at": 0,
                                           "from": sender_lname}, cap, unread_per_sender,
                     check_only=True)
    return None if got[0] == "ok" else got[1]


def outbox_done(r: Any, lname: str, mail_id: str) -> None:
    """The notice of this mail is handled (or there is none): its outbox entry goes."""
    r.zrem(keys.mail_outbox(), outbox_member(lname, mail_id))


# KEYS: outbox. ARGV: entries older than this (unix ms) are due, now (ms), oldest kept (ms),
# batch. Returns the due members; their score becomes now, so one is re-queued at most once a
# grace period. Entries older than the oldest kept are dropped.
OUTBOX_DUE = Lua("""
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, ARGV[4])
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], m) end
return due""")


def outbox_grace_ms(config: Config) -> int:
    """An outbox entry older than this lost its notice job: twice the sweep period, at least
    2 s (a web process stores the mail and queues the notice in milliseconds)."""
    return max(2, 2 * config.sweep_interval) * 1000


def outbox_due(r: Any, config: Config, batch: int) -> list[tuple[str, str]]:
    """(lname, mail id) of outbox entries older than the grace, at most ``batch``; each is
    handed out at most once a grace period. One round trip."""
    now = int(time.time() * 1000)
    got = OUTBOX_DUE(r, [keys.mail_outbox()],
                     [now - outbox_grace_ms(config), now, now - OUTBOX_MAX_AGE_MS, batch])
    return [(m.split(":", 1)[1], m.split(":", 1)[0]) for m in got]


def outbox_waiting(r: Any, config: Config) -> bool:
    """Whether some outbox entry is older than the grace (the ticker asks before queueing a
    sweep, so an idle fleet writes nothing). One round trip."""
    cutoff = int(time.time() * 1000) - outbox_grace_ms(config)
    return bool(r.zrangebyscore(keys.mail_outbox(), "-inf", f"({cutoff}", start=0, num=1))


def summary(mail_id: str, fields: dict[str, str]) -> dict[str, Any]:
    """A mail as ``mail.list`` shows it."""
    return {"id": mail_id, "from": fields["from"], "subject": fields["subject"],
            "at": float(fields["at"]), "read": fields["read"] == "1"}


def _live(r: Any, config: Config, server_id: str) -> bool:
    beat = r.zscore(keys.status_live(), server_id)
    return beat is not None and beat >= time.time() * 1000 - config.status_ttl * 1000


# KEYS 1 notified, 2 notice-at, 3 unread. ARGV 1 notice-at TTL (ms), then mail ids.
# Marks the ids announced (and forgets ids no longer unread once the set outgrows the unread).
MARK = Lua("""
local t = redis.call('TIME')
redis.call('SADD', KEYS[1], unpack(ARGV, 2))
redis.call('SET', KEYS[2], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), 'PX', ARGV[1])
if redis.call('SCARD', KEYS[1]) > redis.call('ZCARD', KEYS[3]) + 64 then
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    if not redis.call('ZSCORE', KEYS[3], id) then redis.call('SREM', KEYS[1], id) end
  end
end
return 0""")


def _mark(r: Any, lname: str, ids: list[str]) -> None:
    for i in range(0, len(ids), 500):
        MARK(r, [keys.mail_notified(lname), keys.mail_notice_at(lname),
                 keys.mailbox_unread(lname)], [NOTICE_AT_TTL_MS, *ids[i:i + 500]])


def notice(r: Any, config: Config, lname: str, mail_id: str) -> tuple[str, dict[str, Any] | None]:
    """Step 1 of a live notice: what to send and where, read from the recipient's slot and the
    heartbeat. (outcome, None) when there is nothing to send: 'gone' (no such mail), 'read',
    'done' (announced already), 'offline' (the pending notice covers it at the next join);
    ('send', notice) otherwise. One or two round trips."""
    pipe = r.pipeline(transaction=False)
    pipe.hmget(keys.mail(lname, mail_id), "id", "from", "subject", "read")
    pipe.zscore(keys.mailbox_unread(lname), mail_id)
    pipe.sismember(keys.mail_notified(lname), mail_id)
    pipe.hmget(keys.player(lname), "name", "server")
    pipe.zcard(keys.mailbox_unread(lname))
    (found, sender, subject, read), unread_at, told, (name, server), unread = pipe.execute()
    if not found:
        return "gone", None
    if read == "1" or unread_at is None:
        return "read", None
    if told:
        return "done", None
    if not server or not _live(r, config, server):
        return "offline", None
    sender, subject = sender or "", subject or ""
    body = f"New mail from {sender}" + (f": {subject}" if subject else "")
    return "send", {"type": "mail", "from": sender, "to": server, "player": name,
                    "mail_id": mail_id, "subject": subject, "unread": unread, "body": body}


def deliver_notice(r: Any, config: Config, lname: str, data: dict[str, Any]) -> str:
    """Step 2: append the live notice once (``messages.send_once``): 'sent', 'done' (a
    previous try did) or 'no_server'."""
    return messages.send_once(r, config, f"mail:{lname}:{data['mail_id']}", data["to"], "mail",
                              data)


def mark_notified(r: Any, lname: str, mail_id: str) -> None:
    """Step 3: the mail is announced (the recipient's slot)."""
    _mark(r, lname, [mail_id])


def pending_notice(r: Any, config: Config, lname: str, server_id: str, joined_ms: int
                   ) -> tuple[str, dict[str, Any] | None, list[str]]:
    """Step 1 of a pending-mail notice for a player who came online on ``server_id``:
    (outcome, notice, unread ids). Outcomes without a notice: 'moved' (online elsewhere now),
    'offline' (the server is not live), 'none' (no unread mail), 'done' (every unread mail was
    announced since the join). Two or three round trips."""
    pipe = r.pipeline(transaction=False)
    pipe.hmget(keys.player(lname), "name", "server")
    pipe.zrevrange(keys.mailbox_unread(lname), 0, -1)
    pipe.get(keys.mail_notice_at(lname))
    (name, at), ids, notice_at = pipe.execute()
    if at != server_id:
        return "moved", None, []
    if not _live(r, config, server_id):
        return "offline", None, []
    if not ids:
        return "none", None, []
    pipe = r.pipeline(transaction=False)
    pipe.hmget(keys.mail(lname, ids[0]), "from", "subject")
    pipe.smismember(keys.mail_notified(lname), ids)
    (sender, subject), told = pipe.execute()
    if int(notice_at or 0) >= joined_ms and all(told):
        return "done", None, ids
    n = len(ids)
    return "send", {"type": "mail", "pending": True, "from": sender or "", "to": server_id,
                    "player": name, "mail_id": ids[0], "subject": subject or "", "unread": n,
                    "body": f"You have {n} unread mail" + ("s" if n > 1 else "")}, ids


def deliver_pending(r: Any, config: Config, lname: str, joined_ms: int,
                    data: dict[str, Any]) -> str:
    """Step 2: append the pending notice once per join."""
    return messages.send_once(r, config, f"pending:{lname}:{data['to']}:{joined_ms}",
                              data["to"], "mail", data)


def mark_pending(r: Any, lname: str, ids: list[str]) -> None:
    """Step 3: every unread mail the pending notice covered is announced."""
    _mark(r, lname, ids)


# --- blocked senders (mail.block, README "Abuse budgets") -----------------------------------------
# KEYS: the player's blocked senders (hash: lowercase name -> name as given). ARGV: lowercase
# name, name, cap. 1 stored (or there already), 0 refused (the list holds ``cap`` senders).
BLOCK = Lua(lua.HSET_CAPPED
            + "return hset_capped(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]))")


def block(r: Any, lname: str, sender: str, cap: int) -> bool:
    """Block ``sender``'s mail to ``lname``; False when the list is full. One round trip."""
    return BLOCK(r, [keys.mail_blocked(lname)], [sender.lower(), sender, cap]) == 1


def unblock(r: Any, lname: str, sender: str) -> None:
    r.hdel(keys.mail_blocked(lname), sender.lower())


def blocked(r: Any, lname: str) -> list[str]:
    """The senders ``lname`` blocked, sorted without regard to case. One round trip."""
    return [v for _, v in sorted(r.hgetall(keys.mail_blocked(lname)).items())]
