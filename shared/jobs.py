"""RQ jobs and their enqueue helpers (queues ``mail`` and ``status``); docs/WORKERS.md.

This module is the RQ side only: enqueueing, the job functions, their retries and timeouts. The
scripts the jobs run live with the storage they touch (``shared.storage.mail`` notices,
``shared.storage.status`` sweep, ``shared.storage.messages`` trim).

A job that must exist exactly when a write exists is enqueued in the write's MULTI/EXEC::

    tx = ctx.redis.pipeline()
    tx.multi()                      # explicit transaction first: RQ then adds to it
    tx.hset(...)                    # the write
    jobs.enqueue_mail_notice(ctx.redis, tx, lname, mail_id)
    tx.execute()                    # write + job, atomically

Jobs take ids and primitives, are idempotent, and declare their retries here. Each job's work
is ONE Lua script that checks, marks and delivers atomically, so a worker killed at any point
either did all of it (a retry then finds the mark and does nothing) or none of it (a retry does
it). The scripts touch a player's keys, the live index and the inboxes in one script: atomic on
the single-node Redis we run; a Redis Cluster deployment would need these keys on one slot.
Inbox writes reuse ``messages.DELIVER`` verbatim (``messages.JOB_PRELUDE``), so stream ids
come from the id log like every other delivery.
"""

from __future__ import annotations

import functools
import logging
import time
from datetime import UTC
from typing import Any

from rq import Queue, Retry, get_current_job

from shared.config import Config
from shared.redis_conn import connect_data
from shared.storage import bans, mail, messages, status

log = logging.getLogger("ssm.jobs")

MAIL_QUEUE = "mail"
STATUS_QUEUE = "status"
MAIL_RETRY = Retry(max=5, interval=[1, 2, 5, 15, 60])
MAIL_TIMEOUT = 30    # seconds; also bounds how long a job of a killed worker stays "started"
STATUS_TIMEOUT = 120
SWEEP_BATCH = 50     # dead servers handled per sweep script
BAN_JOB_SECONDS = 5  # how often the ban outbox job may be queued (only when something is due)


def _queue(r: Any, name: str) -> Queue:
    return Queue(name, connection=r)


def enqueue_mail_notice(r: Any, tx: Any, lname: str, mail_id: str) -> None:
    """Queue the live notice for one stored mail, inside the caller's transaction ``tx``."""
    _queue(r, MAIL_QUEUE).enqueue_call(
        "shared.jobs.notify_mail", args=(lname, mail_id), pipeline=tx, timeout=MAIL_TIMEOUT,
        job_id=notice_job_id(lname, mail_id), retry=MAIL_RETRY, result_ttl=0)


def notice_job_id(lname: str, mail_id: str) -> str:
    """The RQ job id of one mail's notice (mail.send's script removes it on refusal)."""
    return f"mail-{_safe(lname)}-{mail_id}"


def enqueue_pending_notice(r: Any, tx: Any, lname: str, server_id: str,
                           joined_ms: int | None = None) -> None:
    """Queue the pending-mail notice for a player who just came online on ``server_id``.

    ``joined_ms`` (Redis TIME of the join) travels in the job's arguments, so a retry compares
    against the join, not against when RQ re-queued it."""
    args = (lname, server_id) if joined_ms is None else (lname, server_id, int(joined_ms))
    _queue(r, MAIL_QUEUE).enqueue_call(
        "shared.jobs.notify_pending", args=args, pipeline=tx,
        timeout=MAIL_TIMEOUT, retry=MAIL_RETRY, result_ttl=0)


def enqueue_periodic(r: Any, func: str, ttl: int) -> None:
    """Queue a periodic status job (sweep, trim); it is dropped if not started within ``ttl``."""
    _queue(r, STATUS_QUEUE).enqueue_call(f"shared.jobs.{func}", timeout=STATUS_TIMEOUT,
                                         ttl=ttl, result_ttl=0, failure_ttl=86400)


def _safe(text: str) -> str:
    """RQ job ids allow letters, digits, _ and - only; player names allow more."""
    return "".join(c if c.isalnum() or c in "_-" else f"_{ord(c):x}" for c in text)


# --- job environment ------------------------------------------------------------------------
@functools.cache
def _env() -> tuple[Any, Config]:
    """(decoded Redis client, config) of this worker process, read from the environment once."""
    config = Config.from_env()
    return connect_data(config), config


def _pause(config: Config) -> None:
    """Test hook (SSM_TEST_JOB_PAUSE_MS): widen the window in which a test kills the worker."""
    if config.test_job_pause_ms:
        time.sleep(config.test_job_pause_ms / 1000)


# --- jobs -----------------------------------------------------------------------------------
def notify_mail(lname: str, mail_id: str) -> str:
    """Push a ``mail`` notice to the live server the recipient is online on, once.

    Nothing happens when the mail is gone (deleted, or refused after the job was queued), read,
    already announced (``keys.mail_notified``), or the recipient is not online on a live server
    (the pending notice covers it at their next join). One round trip (one script).
    """
    r, config = _env()
    _pause(config)
    outcome = mail.notify(r, config, lname, mail_id)
    _pause(config)
    return outcome


def notify_pending(lname: str, server_id: str, joined_ms: int | None = None) -> str:
    """Push one pending-mail notice to ``server_id`` for a player who came online there.

    Sent when the player is still online on that live server with unread mail, unless every
    unread mail was already announced since the join (``joined_ms``, default: when the job was
    queued), so a retry, a duplicate job or a live notice racing the join is not repeated. The
    notice names the newest unread mail and the unread count; every unread mail is then marked
    announced. One round trip (one script).
    """
    r, config = _env()
    if joined_ms is None:
        job = get_current_job()
        at = job.enqueued_at if job else None
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=UTC)  # RQ stores UTC
        joined_ms = int(at.timestamp() * 1000) if at else 0
    _pause(config)
    outcome = mail.notify_pending(r, config, lname, server_id, joined_ms)
    _pause(config)
    return outcome


def sweep_status() -> list[str]:
    """Expire servers whose heartbeat is older than STATUS_TTL; returns their ids.

    Per dead server, in one script: drop it from the live index and the status data, take its
    players offline (the account's ``server`` is cleared only if it still names that server;
    ``last_seen`` becomes the last heartbeat), delete its player set, and append a
    ``server_offline`` event to every server still live. The ZREM inside the script is the
    gate: two sweeps never expire (or announce) one server twice. One round trip per batch.
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
    and offline mark, the inbox delivery: shared/storage/bans.py), and drop expired bans from
    the ban index. Idempotent: a delivery marker keeps a push from being appended twice.
    Returns how many outbox entries were redone."""
    r, config = _env()
    now = time.time()
    redone, pruned = bans.redeliver(r, config, now), bans.prune(r, now)
    (log.info if redone or pruned else log.debug)(
        "bans: %d unfinished push(es) redone, %d expired ban(s) pruned", redone, pruned)
    return redone
