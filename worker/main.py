"""The worker process: ``python -m shared.worker`` (the Procfile's ``worker``); docs/WORKERS.md.

Checks the configuration (no ``REDIS_URL``: exits at once saying what to set), then runs one RQ
worker per queue, ``status`` and ``mail``, and WEBHOOK_WORKERS (2) for ``webhooks``, as child
processes (``--queue NAME`` runs one of them alone). One queue per RQ worker matters: RQ 2.12
takes a job with BLMOVE into an intermediate list (recovered if the worker dies) only when the
worker listens on a single queue; with several queues it uses BLPOP, and a worker killed
between the pop and its started registry loses the job. A separate status worker also keeps
the expiry sweep ahead of any mail backlog.
The mail worker runs RQ's scheduler (the retries' back-off of the mail and webhooks queues); the
status worker runs none, and runs instead a ticker thread that queues the periodic jobs. Each
webhooks worker runs a ticker that queues the drain of outboxes holding new
webhook events (docs/WEBHOOKS.md); a delivery waits for its endpoint in its own worker process,
so webhooks never hold back mail notices or sweeps.
Any number of worker processes may run: the ticker takes a Redis lock (``SET NX PX``) per
period, so one sweep is queued per STATUS_SWEEP_SECONDS fleet-wide, and only when some
heartbeat has lapsed (an idle backend queues no sweep and writes nothing); the sweep itself is
atomic per dead server, so it never announces one twice.

Logging: one line per event that changed something (``ssm.jobs``: servers expired, entries
trimmed); RQ's own per-job lines (job started, OK, result discarded) are at INFO, which RQ's
loggers skip unless ``--verbose``; its warnings and errors (failed jobs) always show.

With ``REDIS_CLUSTER=1`` the RQ side (queues, jobs, the ticker's trim lock) is on the plain
Redis at ``REDIS_QUEUE_URL`` and the jobs' data on the cluster (docs/CLUSTER.md).

The default class is RQ's forking ``Worker`` (each job in a child "horse": a SIGKILLed horse's
job is retried within seconds); ``--simple`` runs ``SimpleWorker`` (faster, but a job of a
killed SimpleWorker is stranded until RQ's maintenance finds it). RQ needs a Redis client with
``decode_responses=False``; the jobs open their own decoded client.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

import redis
from rq import SimpleWorker, Worker
from rq.scheduler import RQScheduler

from shared import metrics, migrations
from shared.config import Config, ConfigError
from shared.logs import setup_logging
from shared.queues import MAIL_QUEUE, STATUS_QUEUE, WEBHOOKS_QUEUE
from shared.redis_conn import connect_data, connect_queue
from worker.jobs import WebhookRetry
from worker.ticker import Ticker, WebhookTicker

QUEUES = (STATUS_QUEUE, MAIL_QUEUE, WEBHOOKS_QUEUE)
MAINTENANCE_SECONDS = 30  # how often RQ looks for jobs abandoned by dead workers
# RQ's scheduler (mail worker: the retries' back-off) polls and writes its heartbeat this often;
# RQ hard-wires 1 s, ~18 KB of append-only file a minute on an idle backend. A retry is queued
# at most this much after its back-off.
SCHEDULER_SECONDS = 5
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>: die_with_parent


class SlowerScheduler:
    """Worker mixin: RQ's scheduler with SCHEDULER_SECONDS between polls. Replaces rq 2.12's
    ``Worker._start_scheduler``, which builds ``RQScheduler`` with its default 1 s interval; the
    burst branch is left out (the scheduler never runs in burst mode here). The mail worker's
    scheduler also serves the webhooks queue's retries: one heartbeat instead of two, idle."""

    # what the mixin uses of the RQ worker it is mixed into
    queues: list[Any]
    connection: Any
    serializer: Any
    scheduler: RQScheduler | None

    def _start_scheduler(self, burst: bool = False, logging_level: str | None = "INFO",
                         *args: Any, **kwargs: Any) -> None:  # noqa: ARG002
        names = [q.name for q in self.queues]
        if MAIL_QUEUE in names:  # one scheduler (one heartbeat) for both retrying queues
            names.append(WEBHOOKS_QUEUE)
        self.scheduler = scheduler = RQScheduler(
            names, connection=self.connection, interval=SCHEDULER_SECONDS,
            logging_level=logging_level or "INFO", serializer=self.serializer)
        scheduler.acquire_locks()
        if scheduler.acquired_locks:
            scheduler.start()


class QuietRetries:
    """Worker mixin: a webhook attempt that failed (``WebhookRetry``) is already in the
    webhook's delivery log, so RQ logs no error and traceback for it; RQ still retries it."""

    def handle_exception(self, job: Any, *exc_info: Any) -> None:
        if isinstance(exc_info[1], WebhookRetry):
            return
        super().handle_exception(job, *exc_info)  # type: ignore[misc]


class ForkingWorker(QuietRetries, SlowerScheduler, Worker):
    pass


class SimpleWorkerSlowerScheduler(QuietRetries, SlowerScheduler, SimpleWorker):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.worker",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--simple", action="store_true", help="SimpleWorker (no fork per job)")
    parser.add_argument("--burst", action="store_true",
                        help="work until the queues are empty, then exit (no ticker)")
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    parser.add_argument("--verbose", action="store_true",
                        help="also RQ's per-job lines (job started, OK, result discarded)")
    parser.add_argument("--queue", choices=QUEUES,
                        help="run the RQ worker of this one queue (default: one per queue)")
    opts = parser.parse_args(argv)
    try:
        config = Config.from_env()
        config.require_redis()
    except ConfigError as err:
        print(f"ssm worker: configuration error: {err}", file=sys.stderr)
        return 2
    conn: Any = connect_queue(config)  # RQ's queues (bytes replies); jobs open a data client
    name = "REDIS_QUEUE_URL" if config.redis_queue_url else "REDIS_URL"
    try:
        conn.ping()
    except redis.RedisError as err:
        print(f"ssm worker: cannot reach Redis at {name}={config.queue_url}: {err}",
              file=sys.stderr)
        return 1
    setup_logging(config, "worker")
    if not migrations.at_start(connect_data(config, socket_timeout=60), "ssm worker", True):
        return 1  # data newer than this release: said so
    if opts.queue is None:
        with metrics.worker_exposition(config, conn, QUEUES):  # /metrics: WORKER_METRICS_PORT
            return supervise(sys.argv[1:] if argv is None else argv, opts.burst)
    if not die_with_parent():
        return 0  # the supervisor is already gone: nobody would stop this worker
    if opts.quiet:
        logging.getLogger().setLevel(logging.WARNING)
    # jobs done/failed/retried counted per queue
    cls = metrics.counting(SimpleWorkerSlowerScheduler if opts.simple else ForkingWorker)
    worker = cls([opts.queue], connection=conn, maintenance_interval=MAINTENANCE_SECONDS)
    ticker: Any = None
    if not opts.burst and opts.queue == STATUS_QUEUE:
        ticker = Ticker(config, worker.name)
        ticker.start()
    elif not opts.burst and opts.queue == WEBHOOKS_QUEUE:
        ticker = WebhookTicker(config)
        ticker.start()
    # the status jobs declare no retries; the mail worker's scheduler queues the retries of
    # both the mail and webhooks queues (one per queue fleet-wide holds its lock)
    scheduler = not opts.burst and opts.queue == MAIL_QUEUE
    logging.getLogger("ssm.worker").info("%s worker %s started (pid %d)%s", opts.queue,
                                         worker.name, os.getpid(),
                                         ", with RQ's scheduler" if scheduler else "")
    try:
        worker.work(burst=opts.burst, with_scheduler=scheduler,
                    logging_level="INFO" if opts.verbose else "WARNING")
    finally:
        if ticker is not None:
            ticker.stopping.set()
    return 0


def die_with_parent() -> bool:
    """Ask Linux to SIGTERM this queue worker when the process that started it dies (a
    supervisor killed with SIGKILL would otherwise leave its queue workers running, and the
    platform's restart would double them). SIGTERM is RQ's warm shutdown: a job under way
    finishes (its work-horse is not signalled). False when the parent is already gone."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the supervisor's SIGTERM still reaches it
        return True
    return os.getppid() != 1


def supervise(argv: list[str], burst: bool) -> int:
    """Run one worker process per queue; SIGTERM/SIGINT stop both. If one dies unasked, stop
    the other and exit non-zero, so the platform (or honcho) restarts the whole process."""
    counts = {WEBHOOKS_QUEUE: Config.from_env().webhook_workers}
    children: list[subprocess.Popen] = []
    stopping = False

    def stop(signum: int = signal.SIGTERM, frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    # handlers first: a SIGTERM that arrives while the children start must still reach them
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for q in QUEUES:
        for _ in range(counts.get(q, 1)):
            if not stopping:
                children.append(subprocess.Popen([sys.executable, "-m", "shared.worker",
                                                  "--queue", q, *argv]))
    while any(child.poll() is None for child in children):
        if not stopping and not burst and any(child.poll() is not None for child in children):
            print("ssm worker: a queue worker exited; stopping", file=sys.stderr, flush=True)
            stop()
        time.sleep(0.2)
    codes = [child.returncode for child in children]
    return 0 if (stopping and not any(c and c > 0 for c in codes)) or not any(codes) else 1


if __name__ == "__main__":
    sys.exit(main())
