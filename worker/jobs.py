"""The RQ job bodies (queues ``mail``, ``status`` and ``webhooks``); docs/WORKERS.md,
docs/WEBHOOKS.md. What queues them, with their ids, retries and timeouts, is
``shared/queues.py``; RQ names them ``shared.jobs.<function>`` (``shared/jobs.py`` re-exports
them from here, so jobs queued by any release resolve).

The storage steps the jobs run live with the storage they touch (``shared.storage.mail``
notices, ``shared.storage.status`` sweep, ``shared.storage.messages`` trim).

Jobs are queued on the queue client (``ctx.queue``: the data client on a single Redis, a plain
Redis of its own on a cluster) after the data step they follow, never inside a data MULTI; what
a crash in between would lose is covered by the data side (the mail outbox, swept by
:func:`sweep_outbox`). Jobs take ids and primitives, are idempotent, and declare their retries
in ``shared/queues.py``. A job's steps are ordered, each on one hash tag, and the one that must
not happen twice (appending a notice) writes its own marker in the same script, so a worker
killed at any point is retried without a repeat (docs/CLUSTER.md).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from datetime import UTC
from typing import Any

from rq import Retry, get_current_job
from rq.exceptions import DuplicateJobError
from rq.job import Job

from shared import delivery, events, faults, keys
from shared.config import Config
from shared.queues import (
    JOBS,
    WEBHOOK_JOB_TIMEOUT,
    WEBHOOKS_QUEUE,
    delivery_job_id,
    enqueue_mail_notice,
    notice_job_id,
    queue_of,
)
from shared.redis_conn import Lua, connect_data, connect_queue
from shared.storage import bans, mail, messages, seasons, status, webhooks

log = logging.getLogger("ssm.jobs")

SWEEP_BATCH = 50     # dead servers handled per sweep script
OUTBOX_BATCH = 100   # outbox entries handed out per script
BAN_JOB_SECONDS = 5  # how often the ban outbox job may be queued (only when something is due)


# --- job environment ------------------------------------------------------------------------
@functools.cache
def _env() -> tuple[Any, Config]:
    """(decoded Redis client, config) of this worker process, read from the environment once."""
    config = Config.from_env()
    return connect_data(config), config


def _queue_client(config: Config) -> Any:
    """The queue Redis a job queues more jobs on: its own job's connection, else (called
    in-process) a client for REDIS_QUEUE_URL. Never the data client: on a cluster RQ runs on
    a Redis of its own."""
    job = get_current_job()
    return job.connection if job else connect_queue(config)



# --- jobs -----------------------------------------------------------------------------------
def notify_mail(lname: str, mail_id: str) -> str:
    """Push a ``mail`` notice to the live server the recipient is online on, once.

    Nothing is pushed when the mail is gone (deleted, or refused after the job was queued),
    read, already announced (``keys.mail_notified``), or the recipient is not online on a live
    server (the pending notice covers it at their next join). Steps: read (the recipient's
    slot, the heartbeat), append with its marker (``{msg}``), mark announced, drop the outbox
    entry. Four or five round trips.
    """
    r, config = _env()
    faults.pause_job(config)
    outcome, data = mail.notice(r, config, lname, mail_id)
    if data is not None:
        outcome = mail.deliver_notice(r, config, lname, data)
        faults.pause_job(config)
        if outcome != "no_server":
            mail.mark_notified(r, lname, mail_id)
    mail.outbox_done(r, lname, mail_id)
    return outcome


def notify_pending(lname: str, server_id: str, joined_ms: int | None = None) -> str:
    """Push one pending-mail notice to ``server_id`` for a player who came online there.

    Sent when the player is still online on that live server with unread mail, unless every
    unread mail was already announced since the join (``joined_ms``, default: when the job was
    queued), so a retry, a duplicate job or a live notice racing the join is not repeated. The
    notice names the newest unread mail and the unread count; every unread mail is then marked
    announced. The append carries a marker per join, so a retry never repeats it.
    """
    r, config = _env()
    if joined_ms is None:
        job = get_current_job()
        at = job.enqueued_at if job else None
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=UTC)  # RQ stores UTC
        joined_ms = int(at.timestamp() * 1000) if at else 0
    faults.pause_job(config)
    outcome, data, ids = mail.pending_notice(r, config, lname, server_id, joined_ms)
    if data is None:
        return outcome
    outcome = mail.deliver_pending(r, config, lname, joined_ms, data)
    faults.pause_job(config)
    if outcome != "no_server":
        mail.mark_pending(r, lname, ids)
    return outcome


def sweep_outbox() -> int:
    """Queue the notice of every mail whose outbox entry outlived the grace and whose notice
    job is not on the queue (its web process died between storing the mail and queueing the
    notice); returns how many. A job still waiting in a backlog is left alone; the notice job
    is idempotent, so one queued twice in a race is harmless."""
    r, config = _env()
    q = _queue_client(config)
    n = 0
    while True:
        due = mail.outbox_due(r, config, OUTBOX_BATCH)
        pipe = q.pipeline(transaction=False)
        for lname, mail_id in due:
            pipe.exists(Job.key_for(notice_job_id(lname, mail_id)))
        for (lname, mail_id), queued in zip(due, pipe.execute(), strict=True):
            if not queued:
                enqueue_mail_notice(q, lname, mail_id)
                n += 1
        if len(due) < OUTBOX_BATCH:
            if n:
                log.info("outbox: queued %d lost notice(s)", n)
            return n


def sweep_status() -> list[str]:
    """Expire servers whose heartbeat is older than STATUS_TTL; returns their ids.

    Per dead server, in one script: drop it from the live index and the status data, take its
    players offline (the account's ``server`` is cleared only if it still names that server;
    ``last_seen`` becomes the last heartbeat), delete its player set, and append a
    ``server_offline`` event to every server still live, and a ``server.offline`` webhook event.
    The ZREM inside the script is the gate: two sweeps never expire (or announce) one server
    twice. One round trip per batch.
    """
    r, config = _env()
    expired: list[str] = []
    while True:
        got = status.sweep(r, config, SWEEP_BATCH)
        expired += got[:-1]
        if len(got) - 1 < SWEEP_BATCH:
            if expired:
                log.info("sweep: expired %d server(s): %s", len(expired), " ".join(expired))
            else:
                log.debug("sweep: nothing to expire")
            return expired


def trim_inboxes() -> int:
    """Drop inbox entries older than MESSAGE_KEEP_SECONDS that are not among the newest
    MESSAGE_KEEP_COUNT of their inbox; returns how many. Deliveries trim as they go; this
    catches inboxes that stopped receiving. 1 + one round trip per 100 servers.
    """
    r, config = _env()
    dropped = messages.trim_aged(r, config)
    (log.info if dropped else log.debug)("trim: dropped %d inbox entries", dropped)
    return dropped


def ban_job_due(r: Any, owner: str, period_ms: int) -> bool:
    """Whether to queue ``ban_outbox`` now: a ban's push was left unconfirmed for a few seconds
    or a ban expired, and this caller won the period's lock. One round trip; no write when
    nothing is due."""
    return bans.due(r, owner, int(time.time() * 1000), period_ms)


def ban_outbox() -> int:
    """Finish what a web process left undone after storing a ban or a lift (the player's copy
    and offline mark, the inbox delivery: shared/storage/bans.py), drop expired bans from
    the ban index and the active lists, and fill the ``ban.list`` indexes of a store older
    than them. Idempotent: a delivery marker keeps a push from being appended twice.
    Returns how many outbox entries were redone."""
    r, config = _env()
    now = time.time()
    redone, pruned = bans.redeliver(r, config, now), bans.prune(r, now)
    bans.reindex(r, now)
    (log.info if redone or pruned else log.debug)(
        "bans: %d unfinished push(es) redone, %d expired ban(s) pruned", redone, pruned)
    return redone


def archive_seasons() -> int:
    """Archive the ended seasons of every board due (``keys.seasons_due``): each season's top 3
    and its ``season.ended`` event, once, then drop seasons beyond SEASONS_KEPT
    (shared/storage/seasons.py). Returns how many events were emitted."""
    r, config = _env()
    now = time.time()
    emitted = boards = 0
    while True:
        due = r.zrangebyscore(keys.seasons_due(), "-inf", int(now * 1000), start=0,
                              num=seasons.DUE_BATCH)
        for board in due:
            emitted += seasons.archive(r, board, now, config.seasons_kept)
        boards += len(due)
        if len(due) < seasons.DUE_BATCH:
            break
    (log.info if boards else log.debug)("seasons: %d board(s) archived, %d season.ended "
                                        "event(s)", boards, emitted)
    return emitted


# --- webhooks: outboxes drained into one delivery job per (event, webhook) --------------------
DELIVERY_RESULT_TTL = 600  # a delivered job's id is kept this long: a re-drain skips it
DRAIN_BATCH = 200  # outbox entries per read
DRAIN_BATCHES = 25  # reads per drain job; the next tick queues another for the rest
RETRY_FIRST, RETRY_CAP = 10, 900  # seconds: back-off doubles from the first, up to the cap
SUSPECT_MS = 1000  # an attempt unanswered this long stops other attempts to its endpoint


def job_timeout(config: Config) -> int:
    """RQ's timeout of a delivery job: a margin over the attempt's own deadline
    (WEBHOOK_TIMEOUT_SECONDS, which ``delivery.post`` keeps), so the attempt is always logged."""
    return max(WEBHOOK_JOB_TIMEOUT, config.webhook_timeout + 15)


class WebhookRetry(Exception):
    """A delivery attempt failed (or waited for a failing endpoint): RQ retries the job. The
    attempt is in the webhook's delivery log; the worker logs no traceback for it."""


def retry_intervals(window: int) -> list[int]:
    """Back-off between attempts, doubling from RETRY_FIRST s up to RETRY_CAP s, until the
    waits add up to ``window`` (WEBHOOK_RETRY_WINDOW_SECONDS). 3600: 10, 20, 40, 80, 160, 320,
    640, 900, 900, 900 (63 min, 11 attempts)."""
    out: list[int] = []
    step = min(RETRY_FIRST, window)
    while sum(out) < window:
        out.append(min(step, RETRY_CAP))
        step *= 2
    return out


def webhook_drains_due(r: Any) -> list[str]:
    """Tags of the outboxes holding events not yet fanned out, when any webhook exists (the
    ticker's check, reads only). One round trip with no webhook, two otherwise."""
    pipe = r.pipeline(transaction=False)
    pipe.scard(keys.webhook_ids())
    pipe.smembers(keys.boards_index())
    hooks, boards = pipe.execute()
    if not hooks:
        return []
    tags = events.outbox_tags(_text(b) for b in boards)
    pipe = r.pipeline(transaction=False)
    for tag in tags:
        pipe.xrevrange(keys.outbox(tag), count=1)
        pipe.get(keys.outbox_cursor(tag))
    got = pipe.execute()
    return [tag for tag, last, cursor in zip(tags, got[::2], got[1::2], strict=True)
            if last and events.newer(_text(last[0][0]), _text(cursor) if cursor else None)]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


def drain_outbox(tag: str) -> int:
    """Fan the new events of one outbox out: one delivery job per (event, subscribed webhook
    that existed when the event happened), then move the outbox's cursor past them. Returns
    how many jobs were queued. A drain that dies before moving the cursor is redone; the
    delivery job ids (event id + webhook id, queued with ``unique``) keep that from sending an
    event twice while its first job is queued, retrying, or delivered within 10 minutes.
    """
    r, config = _env()
    hooks = [(h["id"], set(webhooks.events_of(h)), int(h.get("created") or 0))
             for h in webhooks.all_hooks(r)]
    queue = queue_of(_queue_client(config), WEBHOOKS_QUEUE)
    intervals = retry_intervals(config.webhook_retry_window)
    retry = Retry(max=len(intervals), interval=intervals) if intervals else None
    cursor = r.get(keys.outbox_cursor(tag)) or "0-0"
    queued = 0
    for _ in range(DRAIN_BATCHES):
        entries = r.xrange(keys.outbox(tag), min=f"({cursor}", count=DRAIN_BATCH)
        for stream_id, fields in entries:
            at_ms, event = events.stream_ms(stream_id), fields.get("e", "")
            eid = events.event_id(tag, stream_id)
            for webhook_id, subscribed, created in hooks:
                if event not in subscribed or at_ms < created:
                    continue
                try:
                    queue.enqueue_call(
                        f"{JOBS}.deliver_webhook",
                        args=(webhook_id, eid, event, at_ms / 1000, fields.get("d", "null")),
                        job_id=delivery_job_id(webhook_id, eid), unique=True, retry=retry,
                        timeout=job_timeout(config), result_ttl=DELIVERY_RESULT_TTL,
                        failure_ttl=86400)
                    queued += 1
                except DuplicateJobError:
                    pass
        if entries:
            cursor = entries[-1][0]
            r.set(keys.outbox_cursor(tag), cursor)
            cap_queue(r, queue.connection, config.webhook_queue_max)
        if len(entries) < DRAIN_BATCH:
            break
    (log.info if queued else log.debug)("webhooks: %d deliveries queued from outbox %s",
                                        queued, tag)
    return queued


# The queue Redis (plain, never a cluster). KEYS: the webhooks queue. ARGV: most deliveries
# waiting, the job hash prefix, the delivery job id prefix. Takes the oldest waiting deliveries
# beyond the cap off the head of the queue (drain jobs, queued at the front, stay) and deletes
# their jobs, in one step (a worker popping meanwhile cannot shift what is cut); returns their
# ids.
CAP = Lua("""
local over = redis.call('LLEN', KEYS[1]) - tonumber(ARGV[1])
if over <= 0 then return {} end
local head, dropped, kept = redis.call('LRANGE', KEYS[1], 0, over + 63), {}, {}
local cut = 0
for i, id in ipairs(head) do
  if #dropped == over then break end
  cut = i
  if string.sub(id, 1, #ARGV[3]) == ARGV[3] then
    dropped[#dropped + 1] = id
    redis.call('DEL', ARGV[2] .. id)
  else
    kept[#kept + 1] = id
  end
end
redis.call('LTRIM', KEYS[1], cut, -1)
for i = #kept, 1, -1 do redis.call('LPUSH', KEYS[1], kept[i]) end
return dropped""")


def cap_queue(r: Any, q: Any, most: int) -> int:
    """Hold the webhooks queue to ``most`` waiting deliveries (WEBHOOK_QUEUE_MAX): the oldest
    beyond it are dropped, counted per webhook (``dropped``, and the ``dropped`` outcome of the
    delivery metrics) and logged. Returns how many. One round trip while under the cap."""
    got = CAP(q, [queue_of(q, WEBHOOKS_QUEUE).key], [most, Job.redis_job_namespace_prefix, "wh-"])
    dropped = [_text(i) for i in got]
    if not dropped:
        return 0
    per: dict[str, int] = {}
    for job_id in dropped:
        webhook_id = job_id.split("-", 2)[1]
        per[webhook_id] = per.get(webhook_id, 0) + 1
    webhooks.count_dropped(r, per)
    log.warning("webhooks: over WEBHOOK_QUEUE_MAX (%d waiting deliveries): dropped the %d "
                "oldest (%s)", most, len(dropped),
                ", ".join(f"{w}: {n}" for w, n in sorted(per.items())))
    return len(dropped)


def deliver_webhook(webhook_id: str, event_id: str, event: str, at: float, data: str) -> str:
    """POST one event to one webhook (shared/delivery.py); returns the outcome.

    ``gone``: the webhook was deleted. ``delivered``: a 2xx answer. A failed attempt (no answer
    within WEBHOOK_TIMEOUT_SECONDS, an error, any other status) is logged on the webhook and
    retried by RQ with back-off (``WebhookRetry``) until WEBHOOK_RETRY_WINDOW_SECONDS have
    passed; the last failure is ``dropped`` and counted. An endpoint that leaves an attempt
    unanswered for SUSPECT_MS gets no other attempt meanwhile; after a failure it is left alone
    until the failing job's next try (``down_until``), then tried by one job at a time. Other
    events for it wait for their own retries instead of each holding a worker for the timeout,
    so a dead endpoint holds one worker process at most, never all of them.
    """
    r, config = _env()
    hook = webhooks.get(r, webhook_id)
    if hook is None:
        return "gone"
    job = get_current_job()
    left = (job.retries_left or 0) if job is not None else 0
    job_id = job.id if job is not None else delivery_job_id(webhook_id, event_id)
    intervals = retry_intervals(config.webhook_retry_window)
    attempt = len(intervals) - left + 1 if job is not None else 1  # no job: one attempt
    now_ms = int(time.time() * 1000)
    entry = {"at": now_ms / 1000, "event": event, "event_id": event_id, "attempt": attempt}
    if not webhooks.admit(r, webhook_id, job_id, now_ms, SUSPECT_MS,
                          (config.webhook_timeout + WEBHOOK_JOB_TIMEOUT) * 1000):
        if left:
            raise WebhookRetry(f"webhook {webhook_id}: endpoint failing, not tried now")
        webhooks.record(r, webhook_id, job_id, {
            **entry, "status": None, "outcome": "dropped", "ms": 0,
            "error": "not tried: the endpoint was failing or not answering"}, "dropped")
        log.warning("webhook %s: %s dropped (endpoint failing)", webhook_id, event_id)
        return "dropped"
    got = delivery.post(hook["url"], hook["secret"], hook.get("format", "json"), event,
                        event_id, at, json.loads(data), timeout=config.webhook_timeout,
                        allow_private=bool(config.webhook_allow_private))
    entry.update(status=got.status, error=got.error, ms=got.ms)
    if got.delivered:
        webhooks.record(r, webhook_id, job_id, {**entry, "outcome": "delivered"}, "delivered",
                        None)
        return "delivered"
    wait = intervals[min(attempt - 1, len(intervals) - 1)] if intervals else 0
    outcome = "failed" if left else "dropped"
    webhooks.record(r, webhook_id, job_id, {**entry, "outcome": outcome}, outcome,
                    int(time.time() * 1000) + wait * 1000)  # from the failure, not the start
    if left:
        log.info("webhook %s: %s attempt %d failed: %s", webhook_id, event_id, attempt,
                 got.error)
        raise WebhookRetry(f"webhook {webhook_id}: {got.error}")
    log.warning("webhook %s: %s dropped after %d attempts: %s", webhook_id, event_id, attempt,
                got.error)
    return "dropped"
