"""RQ jobs and their enqueue helpers (queues ``mail`` and ``status``); docs/WORKERS.md.

This module is the RQ side only, and the only one that knows RQ's keys: enqueueing, the job
functions, their retries and timeouts. The storage steps the jobs run live with the storage
they touch (``shared.storage.mail`` notices, ``shared.storage.status`` sweep,
``shared.storage.messages`` trim).

Jobs are queued on the queue client (``ctx.queue``: the data client on a single Redis, a plain
Redis of its own on a cluster) after the data step they follow, never inside a data MULTI; what
a crash in between would lose is covered by the data side (the mail outbox, swept by
:func:`sweep_outbox`). Jobs take ids and primitives, are idempotent, and declare their retries
here. A job's steps are ordered, each on one hash tag, and the one that must not happen twice
(appending a notice) writes its own marker in the same script, so a worker killed at any point
is retried without a repeat (SPEC §8).
"""

from __future__ import annotations

import functools
import logging
import time
from datetime import UTC
from typing import Any

from rq import Queue, Retry, get_current_job
from rq.job import Job

from shared.config import Config
from shared.redis_conn import connect_data, connect_queue
from shared.storage import mail, messages, status

log = logging.getLogger("ssm.jobs")

MAIL_QUEUE = "mail"
STATUS_QUEUE = "status"
MAIL_RETRY = Retry(max=5, interval=[1, 2, 5, 15, 60])
MAIL_TIMEOUT = 30    # seconds; also bounds how long a job of a killed worker stays "started"
STATUS_TIMEOUT = 120
SWEEP_BATCH = 50     # dead servers handled per sweep script
OUTBOX_BATCH = 100   # outbox entries handed out per script


def _queue(r: Any, name: str) -> Queue:
    return Queue(name, connection=r)


def enqueue_mail_notice(q: Any, lname: str, mail_id: str, pipeline: Any = None) -> None:
    """Queue the live notice for one stored mail on the queue client ``q`` (on ``pipeline``
    if given: the caller executes it)."""
    _queue(q, MAIL_QUEUE).enqueue_call(
        "shared.jobs.notify_mail", args=(lname, mail_id), pipeline=pipeline,
        timeout=MAIL_TIMEOUT, job_id=notice_job_id(lname, mail_id), retry=MAIL_RETRY,
        result_ttl=0)


def cancel_mail_notice(q: Any, lname: str, mail_id: str) -> None:
    """Take back the notice job of a mail that was refused (one round trip)."""
    job_id = notice_job_id(lname, mail_id)
    pipe = q.pipeline(transaction=False)
    pipe.lrem(_queue(q, MAIL_QUEUE).key, 0, job_id)
    pipe.delete(Job.key_for(job_id))
    pipe.execute()


def notice_job_id(lname: str, mail_id: str) -> str:
    """The RQ job id of one mail's notice (mail.send's script removes it on refusal)."""
    return f"mail-{_safe(lname)}-{mail_id}"


def enqueue_pending_notice(q: Any, lname: str, server_id: str,
                           joined_ms: int | None = None, pipeline: Any = None) -> None:
    """Queue the pending-mail notice for a player who just came online on ``server_id``.

    ``joined_ms`` (Redis TIME of the join) travels in the job's arguments, so a retry compares
    against the join, not against when RQ re-queued it."""
    args = (lname, server_id) if joined_ms is None else (lname, server_id, int(joined_ms))
    _queue(q, MAIL_QUEUE).enqueue_call(
        "shared.jobs.notify_pending", args=args, pipeline=pipeline,
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

    Nothing is pushed when the mail is gone (deleted, or refused after the job was queued),
    read, already announced (``keys.mail_notified``), or the recipient is not online on a live
    server (the pending notice covers it at their next join). Steps: read (the recipient's
    slot, the heartbeat), append with its marker (``{msg}``), mark announced, drop the outbox
    entry. Four or five round trips.
    """
    r, config = _env()
    _pause(config)
    outcome, data = mail.notice(r, config, lname, mail_id)
    if data is not None:
        outcome = mail.deliver_notice(r, config, lname, data)
        _pause(config)
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
    _pause(config)
    outcome, data, ids = mail.pending_notice(r, config, lname, server_id, joined_ms)
    if data is None:
        return outcome
    outcome = mail.deliver_pending(r, config, lname, joined_ms, data)
    _pause(config)
    if outcome != "no_server":
        mail.mark_pending(r, lname, ids)
    return outcome


def sweep_outbox() -> int:
    """Re-queue the notice of every mail whose outbox entry outlived the grace (its web
    process died between storing it and queueing its notice); returns how many. The notice
    job is idempotent, so one queued twice is harmless."""
    r, config = _env()
    job = get_current_job()
    q = job.connection if job else connect_queue(config)
    n = 0
    while True:
        due = mail.outbox_due(r, config, OUTBOX_BATCH)
        for lname, mail_id in due:
            enqueue_mail_notice(q, lname, mail_id)
        n += len(due)
        if len(due) < OUTBOX_BATCH:
            if n:
                log.info("outbox: re-queued %d notice(s)", n)
            return n


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
