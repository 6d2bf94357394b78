"""RQ queues and the enqueue helpers: which queue, which job, its id, retries and timeouts
(docs/WORKERS.md, docs/WEBHOOKS.md). What the web and the relay need to queue a job, and nothing
that runs one: this module imports no storage, so storage and operations queue jobs with a plain
import (the job bodies, which call storage, are the worker's: ``worker/jobs.py``).

Jobs are named ``shared.jobs.<function>`` (:data:`JOBS`): the name RQ stores with each queued
job, kept from the first release so that jobs queued before an upgrade still resolve
(``shared/jobs.py`` re-exports the bodies of ``worker/jobs.py``).

Jobs are queued on the queue client (``ctx.queue``: the data client on a single Redis, a plain
Redis of its own on a cluster) after the data step they follow; on one Redis the job may join
that step's MULTI/EXEC instead (:func:`enqueue_after`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.job import Job

from shared.redis_conn import Lua, Ordered

JOBS = "shared.jobs"  # the dotted module RQ resolves job names in (see above)
MAIL_QUEUE = "mail"
STATUS_QUEUE = "status"
WEBHOOKS_QUEUE = "webhooks"
MAIL_RETRY = Retry(max=5, interval=[1, 2, 5, 15, 60])
MAIL_TIMEOUT = 30    # seconds; also bounds how long a job of a killed worker stays "started"
STATUS_TIMEOUT = 120
WEBHOOK_JOB_TIMEOUT = 30  # seconds: the attempt's own deadline is WEBHOOK_TIMEOUT_SECONDS


def queue_of(r: Any, name: str) -> Queue:
    return Queue(name, connection=r)


def enqueue_mail_notice(q: Any, lname: str, mail_id: str, pipeline: Any = None) -> None:
    """Queue the live notice for one stored mail on the queue client ``q`` (on ``pipeline``
    if given: the caller executes it)."""
    queue_of(q, MAIL_QUEUE).enqueue_call(
        f"{JOBS}.notify_mail", args=(lname, mail_id), pipeline=pipeline,
        timeout=MAIL_TIMEOUT, job_id=notice_job_id(lname, mail_id), retry=MAIL_RETRY,
        result_ttl=0)


def cancel_mail_notice(q: Any, lname: str, mail_id: str) -> None:
    """Take back the notice job of a mail that was refused (one round trip)."""
    job_id = notice_job_id(lname, mail_id)
    pipe = q.pipeline(transaction=False)
    pipe.lrem(queue_of(q, MAIL_QUEUE).key, 0, job_id)
    pipe.delete(Job.key_for(job_id))
    pipe.execute()


def notice_job_id(lname: str, mail_id: str) -> str:
    """The RQ job id of one mail's notice (mail.send's script removes it on refusal)."""
    return f"mail-{safe_id(lname)}-{mail_id}"


def enqueue_pending_notice(q: Any, lname: str, server_id: str,
                           joined_ms: int | None = None, pipeline: Any = None) -> None:
    """Queue the pending-mail notice for a player who just came online on ``server_id``.

    ``joined_ms`` (Redis TIME of the join) travels in the job's arguments, so a retry compares
    against the join, not against when RQ re-queued it."""
    args = (lname, server_id) if joined_ms is None else (lname, server_id, int(joined_ms))
    queue_of(q, MAIL_QUEUE).enqueue_call(
        f"{JOBS}.notify_pending", args=args, pipeline=pipeline,
        timeout=MAIL_TIMEOUT, retry=MAIL_RETRY, result_ttl=0)


def enqueue_periodic(r: Any, func: str, ttl: int) -> None:
    """Queue a periodic status job (sweep, trim); it is dropped if not started within ``ttl``."""
    queue_of(r, STATUS_QUEUE).enqueue_call(f"{JOBS}.{func}", timeout=STATUS_TIMEOUT,
                                         ttl=ttl, result_ttl=0, failure_ttl=86400)


def safe_id(text: str) -> str:
    """RQ job ids allow letters, digits, _ and - only; player names allow more."""
    return "".join(c if c.isalnum() or c in "_-" else f"_{ord(c):x}" for c in text)


def enqueue_drain(r: Any, tag: str) -> bool:
    """Queue the drain of one outbox (at the front of the webhooks queue); False when one is
    already queued or running (its job id is fixed per outbox)."""
    try:
        queue_of(r, WEBHOOKS_QUEUE).enqueue_call(
            f"{JOBS}.drain_outbox", args=(tag,), job_id=f"whdrain-{safe_id(tag)}",
            unique=True, at_front=True, timeout=WEBHOOK_JOB_TIMEOUT, result_ttl=0,
            failure_ttl=86400)
    except DuplicateJobError:
        return False
    return True


def delivery_job_id(webhook_id: str, event_id: str) -> str:
    return f"wh-{webhook_id}-{safe_id(event_id)}"


# The queue Redis. KEYS: the webhooks queue. ARGV: a webhook's delivery job id prefix, the job
# hash prefix. Takes that webhook's waiting deliveries out of the queue (the rest keep their
# order) and deletes their jobs, in one step; returns how many.
PURGE = Lua("""
local kept, n = {}, 0
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if string.sub(id, 1, #ARGV[1]) == ARGV[1] then
    n = n + 1
    redis.call('DEL', ARGV[2] .. id)
  else
    kept[#kept + 1] = id
  end
end
if n > 0 then
  redis.call('DEL', KEYS[1])
  for i = 1, #kept, 1000 do
    redis.call('RPUSH', KEYS[1], unpack(kept, i, math.min(i + 999, #kept)))
  end
end
return n""")


def purge_webhook(q: Any, webhook_id: str) -> int:
    """Drop the waiting deliveries of a deleted webhook (they would only find it gone), so a
    backlog for it does not hold up the others. One round trip on the queue Redis."""
    return int(PURGE(q, [queue_of(q, WEBHOOKS_QUEUE).key],
                     [f"wh-{webhook_id}-", Job.redis_job_namespace_prefix]))


def enqueue_after(steps: Ordered, queue: Any, enqueue: Callable[[Any], None] | None,
                  ok: Callable[[list], bool], cancel: Callable[[], None] | None = None) -> list:
    """Run ``steps`` and queue the job that follows them; returns the steps' replies.

    ``enqueue(pipeline)`` queues the job on ``queue`` (on ``pipeline`` when not None). On one
    Redis (``queue`` is the steps' own client) the job joins the steps' MULTI/EXEC, after them,
    and ``cancel()`` (if given) takes it back when ``ok(replies)`` is false; on a cluster (RQ on
    a Redis of its own) it is queued after the steps ran, and only when ``ok(replies)``.
    ``enqueue`` None: nothing to queue, the steps run alone."""
    if enqueue is not None and queue is steps.r:  # one Redis: the job joins the same MULTI
        enqueue(steps.pipe)
        replies = steps.execute()
        if cancel is not None and not ok(replies):
            cancel()
        return replies
    replies = steps.execute()
    if enqueue is not None and ok(replies):
        enqueue(None)
    return replies
