"""The worker's tickers: the status worker's :class:`Ticker` queues the periodic jobs, each
webhooks worker's :class:`WebhookTicker` the drain of outboxes holding new webhook events
(docs/WORKERS.md, docs/WEBHOOKS.md). Any number of worker processes may run: the ticker takes a
Redis lock (``SET NX PX``) per period, so one job is queued per period fleet-wide."""

from __future__ import annotations

import sys
import threading
import time

from shared import keys
from shared.config import Config
from shared.queues import enqueue_drain, enqueue_periodic
from shared.redis_conn import REDIS_ERRORS, connect_data, connect_queue
from shared.storage import mail, seasons, status
from worker.jobs import BAN_JOB_SECONDS, ban_job_due, webhook_drains_due

TICK_SECONDS = 0.25
SEASONS_CHECK_SECONDS = 5  # a board's ended season is archived within this (plus its grace)


class Ticker(threading.Thread):
    """Queues ``sweep_status`` every STATUS_SWEEP_SECONDS, ``trim_inboxes`` every
    MESSAGE_TRIM_SECONDS, ``ban_outbox`` and ``archive_seasons`` every 5 s (only when due), each
    at most once per period across all worker processes."""

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
        self.periodic = [(keys.status_sweep_lock(), config.sweep_interval, "sweep_status"),
                         (keys.inbox_trim_lock(), config.trim_interval, "trim_inboxes"),
                         (keys.ban_job_lock(), BAN_JOB_SECONDS, "ban_outbox"),
                         (keys.outbox_sweep_lock(), config.sweep_interval, "sweep_outbox"),
                         (keys.seasons_job_lock(), SEASONS_CHECK_SECONDS, "archive_seasons")]
        self.config = config

    def run(self) -> None:
        while not self.stopping.wait(TICK_SECONDS):
            try:
                self.tick()
            except REDIS_ERRORS as err:  # Redis away for a moment: try again next tick
                print(f"ssm worker: ticker: {err}", file=sys.stderr, flush=True)

    def tick(self) -> None:
        for lock, every, func in self.periodic:
            if func == "sweep_status":  # only when a heartbeat lapsed: idle, nothing is written
                due = status.sweep_due(self.data, self.owner, self.status_ttl, every * 1000)
            elif func == "ban_outbox":  # only when a push was left unfinished or a ban expired
                due = ban_job_due(self.data, self.owner, every * 1000)
            elif func == "archive_seasons":  # only when a board's season has ended
                due = seasons.due(self.data, self.owner, int(time.time() * 1000), every * 1000)
            elif time.monotonic() < self.not_before.get(func, 0.0):
                continue  # another process holds this period's lock: ask again when it lapses
            elif func == "sweep_outbox" and not mail.outbox_waiting(self.data, self.config):
                continue  # no notice left behind (the usual case): nothing is written
            else:
                due = bool(self.conn.set(lock, self.owner, nx=True, px=every * 1000))
                left_ms = every * 1000 if due else self.conn.pttl(lock)
                self.not_before[func] = time.monotonic() + max(left_ms, 0) / 1000
            if due:
                enqueue_periodic(self.conn, func, ttl=max(10, 2 * every))


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
