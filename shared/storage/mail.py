"""Player mailboxes: storage scripts shared by the mail operations.

A mailbox is ``keys.mailbox`` (zset: mail id -> sequence, newest highest), ``keys.mailbox_unread``
(the unread subset) and one hash per mail (``keys.mail``: id, from, subject, body, at, read).
Mail ids are 12 random base-36 characters; the sequence (``keys.mail_seq``) orders a mailbox
and is the paging cursor of ``mail.list``.
"""

from __future__ import annotations

from typing import Any

from rq import Queue
from rq.job import Job

from shared import jobs, keys
from shared.redis_conn import Lua
from shared.storage import messages

MAIL_ID = r"[a-z0-9]{1,32}"
NOTICE_AT_TTL_MS = 86400 * 1000

# Runs inside the MULTI that queued the live notice, after it, so the notice exists exactly
# when the mail does: on refusal the script removes the job it follows.
# KEYS: 1 recipient account, 2 mailbox, 3 unread, 4 sequence, 5 mail hash, 6 sender account,
#       7 live-server index, 8 notice job hash, 9 mail queue list
# ARGV: 1 mail id, 2 subject, 3 body, 4 at, 5 mailbox cap, 6 sender display name (player),
#       7 sending server id ('' for a player), 8 oldest live heartbeat (ms), 9 notice job id,
#       10 unread cap per sender (0 = none), 11 mail hash key prefix
# Returns {'ok', from} or {'refused', reason}.
# Unread mails per sender are counted, not kept in a counter: only when the mailbox holds at
# least cap unread mails (so at most MAILBOX_MAX lookups), by the stored ``from`` (the sender's
# display name; names are unique case-insensitively). Nothing to keep in step on read, delete
# or player.delete.
STORE = """
local function refuse(why)
  redis.call('DEL', KEYS[8])
  redis.call('LREM', KEYS[9], -1, ARGV[9])
  return {'refused', why}
end
local from = ARGV[6]
if ARGV[7] ~= '' then
  local acct = redis.call('HMGET', KEYS[6], 'name', 'server')
  local beat = redis.call('ZSCORE', KEYS[7], ARGV[7])
  if not acct[1] or acct[2] ~= ARGV[7] or not beat or tonumber(beat) < tonumber(ARGV[8]) then
    return refuse('not_online')
  end
  from = acct[1]
end
if redis.call('HEXISTS', KEYS[1], 'id') == 0 then return refuse('not_found') end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return refuse('mailbox_full') end
local per = tonumber(ARGV[10])
if per > 0 and redis.call('ZCARD', KEYS[3]) >= per then
  local me, n = string.lower(from), 0
  for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
    local sender = redis.call('HGET', ARGV[11] .. id, 'from')
    if sender and string.lower(sender) == me then
      n = n + 1
      if n >= per then return refuse('too_many_unread') end
    end
  end
end
if redis.call('EXISTS', KEYS[5]) == 1 then return refuse('id_taken') end
local seq = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[5], 'id', ARGV[1], 'from', from, 'subject', ARGV[2], 'body', ARGV[3],
           'at', ARGV[4], 'read', '0')
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('ZADD', KEYS[3], seq, ARGV[1])
return {'ok', from}"""


def store_with_notice(r: Any, lname: str, mail_id: str, fields: dict[str, Any],
                      sender_lname: str, server_id: str, live_cutoff_ms: int, cap: int,
                      unread_per_sender: int = 0) -> list:
    """Queue the live notice and store the mail in one MULTI/EXEC (one round trip).

    Returns the script's answer: ``['ok', from]`` or ``['refused', reason]`` (then neither the
    mail nor its notice job exists).
    """
    job_id = jobs.notice_job_id(lname, mail_id)
    tx = r.pipeline()
    tx.multi()
    jobs.enqueue_mail_notice(r, tx, lname, mail_id)
    tx.eval(STORE, 9, keys.player(lname), keys.mailbox(lname), keys.mailbox_unread(lname),
            keys.mail_seq(lname), keys.mail(lname, mail_id), keys.player(sender_lname),
            keys.status_live(), Job.key_for(job_id), Queue(jobs.MAIL_QUEUE, connection=r).key,
            mail_id, fields["subject"], fields["body"], fields["at"], cap, fields["from"],
            server_id, live_cutoff_ms, job_id, unread_per_sender, keys.mail(lname, ""))
    return tx.execute()[-1]


def summary(mail_id: str, fields: dict[str, str]) -> dict[str, Any]:
    """A mail as ``mail.list`` shows it."""
    return {"id": mail_id, "from": fields["from"], "subject": fields["subject"],
            "at": float(fields["at"]), "read": fields["read"] == "1"}


# KEYS 3 mail hash, 4 unread, 5 notified, 6 account, 7 live index, 8 notice-at
# ARGV 6 mail id, 7 STATUS_TTL, 8 notice-at TTL (ms). Returns what happened.
NOTIFY_MAIL = Lua(messages.JOB_PRELUDE + """
local mail = redis.call('HMGET', KEYS[3], 'id', 'from', 'subject', 'read')
if not mail[1] then return 'gone' end
if mail[4] == '1' or not redis.call('ZSCORE', KEYS[4], ARGV[6]) then return 'read' end
if redis.call('SISMEMBER', KEYS[5], ARGV[6]) == 1 then return 'done' end
local acct = redis.call('HMGET', KEYS[6], 'name', 'server')
if not acct[2] or not live(acct[2], ARGV[7]) then return 'offline' end
local unread = redis.call('ZCARD', KEYS[4])
local from, subject = mail[2] or '', mail[3] or ''
local body = 'New mail from ' .. from .. (subject ~= '' and (': ' .. subject) or '')
if not send(acct[2], 'mail', {type = 'mail', from = from, to = acct[2], player = acct[1],
    mail_id = ARGV[6], subject = subject, unread = unread, body = body,
    at = now_ms / 1000}) then return 'no_server' end
redis.call('SADD', KEYS[5], ARGV[6])
redis.call('SET', KEYS[8], now_ms, 'PX', ARGV[8])
if redis.call('SCARD', KEYS[5]) > unread + 64 then
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[5])) do
    if not redis.call('ZSCORE', KEYS[4], id) then redis.call('SREM', KEYS[5], id) end
  end
end
return 'sent'""")

# KEYS 3 unread, 4 notified, 5 account, 6 (unused), 7 live index, 8 notice-at
# ARGV 6 server id, 7 STATUS_TTL, 8 notice-at TTL (ms), 9 joined at (ms), 10/11 mail key
# around the mail id. Returns what happened.
NOTIFY_PENDING = Lua(messages.JOB_PRELUDE + """
local acct = redis.call('HMGET', KEYS[5], 'name', 'server')
if acct[2] ~= ARGV[6] then return 'moved' end
if not live(ARGV[6], ARGV[7]) then return 'offline' end
local ids = redis.call('ZREVRANGE', KEYS[3], 0, -1)
if #ids == 0 then return 'none' end
if tonumber(redis.call('GET', KEYS[8]) or 0) >= tonumber(ARGV[9]) then
  local told = true
  for _, id in ipairs(ids) do
    if redis.call('SISMEMBER', KEYS[4], id) == 0 then told = false break end
  end
  if told then return 'done' end
end
local m = redis.call('HMGET', ARGV[10] .. ids[1] .. ARGV[11], 'from', 'subject')
local body = 'You have ' .. #ids .. ' unread mail' .. (#ids > 1 and 's' or '')
if not send(ARGV[6], 'mail', {type = 'mail', pending = true, from = m[1] or '', to = ARGV[6],
    player = acct[1], mail_id = ids[1], subject = m[2] or '', unread = #ids, body = body,
    at = now_ms / 1000}) then return 'no_server' end
redis.call('DEL', KEYS[4])
for i = 1, #ids, 500 do
  redis.call('SADD', KEYS[4], unpack(ids, i, math.min(i + 499, #ids)))
end
redis.call('SET', KEYS[8], now_ms, 'PX', ARGV[8])
return 'sent'""")


def notify(r: Any, config: Any, lname: str, mail_id: str) -> str:
    """Run :data:`NOTIFY_MAIL` for one mail; returns what happened. One round trip."""
    return NOTIFY_MAIL(r, [*messages.job_keys(), keys.mail(lname, mail_id),
                           keys.mailbox_unread(lname), keys.mail_notified(lname),
                           keys.player(lname), keys.status_live(), keys.mail_notice_at(lname)],
                       [*messages.job_args(config), mail_id, config.status_ttl,
                        NOTICE_AT_TTL_MS])


def notify_pending(r: Any, config: Any, lname: str, server_id: str, joined_ms: int) -> str:
    """Run :data:`NOTIFY_PENDING` for one player on ``server_id``; returns what happened. One
    round trip."""
    return NOTIFY_PENDING(
        r, [*messages.job_keys(), keys.mailbox_unread(lname), keys.mail_notified(lname),
            keys.player(lname), "", keys.status_live(), keys.mail_notice_at(lname)],
        [*messages.job_args(config), server_id, config.status_ttl, NOTICE_AT_TTL_MS, joined_ms,
         *keys.around(keys.mail(lname, keys.HOLE))])
