"""RQ jobs and their enqueue helpers (queues ``mail`` and ``status``).

A job that must exist exactly when a write exists is enqueued in the write's MULTI/EXEC::

    tx = ctx.redis.pipeline()
    tx.multi()                      # explicit transaction first: RQ then adds to it
    tx.hset(...)                    # the write
    jobs.enqueue_mail_notice(ctx.redis, tx, lname, mail_id)
    tx.execute()                    # write + job, atomically

Jobs take ids and primitives, are idempotent, and declare their retries here.
"""

from __future__ import annotations

from typing import Any

from rq import Queue, Retry

MAIL_QUEUE = "mail"
STATUS_QUEUE = "status"
MAIL_RETRY = Retry(max=5, interval=[1, 2, 5, 15, 60])


def _queue(r: Any, name: str) -> Queue:
    return Queue(name, connection=r)


def enqueue_mail_notice(r: Any, tx: Any, lname: str, mail_id: str) -> None:
    """Queue the live notice for one stored mail, inside the caller's transaction ``tx``."""
    _queue(r, MAIL_QUEUE).enqueue_call(
        "shared.jobs.notify_mail", args=(lname, mail_id), pipeline=tx,
        job_id=f"mail-{_safe(lname)}-{mail_id}", retry=MAIL_RETRY, result_ttl=0)


def enqueue_pending_notice(r: Any, tx: Any, lname: str, server_id: str) -> None:
    """Queue the pending-mail notice for a player who just came online on ``server_id``."""
    _queue(r, MAIL_QUEUE).enqueue_call(
        "shared.jobs.notify_pending", args=(lname, server_id), pipeline=tx,
        retry=MAIL_RETRY, result_ttl=0)


def _safe(text: str) -> str:
    """RQ job ids allow letters, digits, _ and - only; player names allow more."""
    return "".join(c if c.isalnum() or c in "_-" else f"_{ord(c):x}" for c in text)


def notify_mail(lname: str, mail_id: str) -> None:
    """Push a ``mail`` notice to the server the recipient is online on (workers issue)."""
    raise NotImplementedError("mail notices arrive with the workers issue")


def notify_pending(lname: str, server_id: str) -> None:
    """Push the pending-mail notice for a player who came online (workers issue)."""
    raise NotImplementedError("pending notices arrive with the workers issue")
