"""The worker's tickers: the status worker's :class:`Ticker` queues the periodic jobs, each
webhooks worker's :class:`WebhookTicker` the drain of outboxes holding new webhook events
(docs/WORKERS.md, docs/WEBHOOKS.md). Any number of worker processes may run: the ticker takes a
Redis lock (``SET NX PX``) per period, so one job is queued per period fleet-wide."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from shared import keys
from shared.config import Config
from shared.queues import enqueue_drain, enqueue_periodic
from shared.redis_conn import REDIS_ERRORS, connect_data, connect_queue
from shared.storage import mail, seasons, status
from worker.jobs import BAN_JOB_SECONDS, ban_job_due, webhook_drains_due

TICK_SECONDS = 0.25
SEASONS_CHECK_SECONDS = 5  # a board's ended season is archived within this (plus its grace)


class Periodic(NamedTuple):
    """A periodic job of the ticker, queued at most once per period fleet-wide."""

    func: str  # the job: shared.jobs.<func> (worker/jobs.py)
    every: Callable[[Config], int]  # its period, seconds
    # a "due, then take the lock" script (shared/lua.py) on the data Redis, given the ticker and
    # the period (ms): the job is queued only when it says so (idle, it writes nothing) ...
    due: Callable[[Ticker, int], bool] | None = None
    # ... or else the period's lock on the queue Redis, taken only when ``waiting`` (if any)
    # says there is work
    lock: Callable[[], str] | None = None
    waiting: Callable[[Ticker], bool] | None = None


PERIODIC = (
    # only when a heartbeat lapsed
    Periodic("sweep_status", lambda c: c.sweep_interval,
             due=lambda t, ms: status.sweep_due(t.data, t.owner, t.status_ttl, ms)),
    Periodic("trim_inboxes", lambda c: c.trim_interval, lock=keys.inbox_trim_lock),
    # only when a push was left unfinished or a ban expired
    Periodic("ban_outbox", lambda c: BAN_JOB_SECONDS,
             due=lambda t, ms: ban_job_due(t.data, t.owner, ms)),
    # only when a notice was left behind (not the usual case)
    Periodic("sweep_outbox", lambda c: c.sweep_interval, lock=keys.outbox_sweep_lock,
             waiting=lambda t: mail.outbox_waiting(t.data, t.config)),
    # only when a board's season has ended
    Periodic("archive_seasons", lambda c: SEASONS_CHECK_SECONDS,
             due=lambda t, ms: seasons.due(t.data, t.owner, int(time.time() * 1000), ms)),
)


class Ticker(threading.Thread):
    """Queues the jobs of :data:`PERIODIC`: ``sweep_status`` every STATUS_SWEEP_SECONDS,
    ``trim_inboxes`` every MESSAGE_TRIM_SECONDS, ``ban_outbox`` and ``archive_seasons`` every
    5 s (only when due), each at most once per period across all worker processes."""

    data: Any  # what PERIODIC's checks read (declared here: the table is above the class)
    owner: str
    status_ttl: int
    config: Config

    def __init__(self, config: Config, name: str):
        super().__init__(name="ssm-ticker", daemon=True)
        # the trim lock and the queues on the queue Redis; the sweep's lock sits next to the
        # live index it reads, in one {status} script, on the data Redis (a cluster slot)
        self.conn = connect_queue(config, socket_timeout=10)
        self.data = connect_data(config, socket_timeout=10)
        self.owner = name
        self.stopping = threading.Event()
        self.status_ttl = config.status_ttl
        self.not_before: dict[str, float] = {}
        self.periodic = [(job, job.every(config)) for job in PERIODIC]
        self.config = config

    def run(self) -> None:
        while not self.stopping.wait(TICK_SECONDS):
            try:
                self.tick()
            except REDIS_ERRORS as err:  # Redis away for a moment: try again next tick
                print(f"ssm worker: ticker: {err}", file=sys.stderr, flush=True)

    def tick(self) -> None:
        for job, every in self.periodic:
            if job.due is not None:
                due = job.due(self, every * 1000)
            elif time.monotonic() < self.not_before.get(job.func, 0.0):
                continue  # another process holds this period's lock: ask again when it lapses
            elif job.waiting is not None and not job.waiting(self):
                continue  # no work waiting (the usual case): nothing is written
            else:
                assert job.lock is not None, job.func
                due = bool(self.conn.set(job.lock(), self.owner, nx=True, px=every * 1000))
                left_ms = every * 1000 if due else self.conn.pttl(job.lock())
                self.not_before[job.func] = time.monotonic() + max(left_ms, 0) / 1000
            if due:
                enqueue_periodic(self.conn, job.func, ttl=max(10, 2 * every))


class WebhookTicker(threading.Thread):
    """Queues the drain of each outbox that holds events not yet fanned out (a few reads every
    TICK_SECONDS while some webhook exists, one without: an idle backend writes nothing)."""

    def __init__(self, config: Config):
        super().__init__(name="ssm-webhook-ticker", daemon=True)
        self.data = connect_data(config, socket_timeout=10)  # the outboxes
        self.conn = connect_queue(config, socket_timeout=10)  # the drain jobs
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(TICK_SECONDS):
            try:
                for tag in webhook_drains_due(self.data):
                    enqueue_drain(self.conn, tag)
            except REDIS_ERRORS as err:  # Redis away for a moment: try again next tick
                print(f"ssm worker: webhook ticker: {err}", file=sys.stderr, flush=True)
