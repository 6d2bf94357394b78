"""The worker process: ``python -m shared.worker`` (the Procfile's ``worker``); docs/WORKERS.md.

Checks the configuration (no ``REDIS_URL``: exits at once saying what to set), then runs an RQ
worker on the ``status`` and ``mail`` queues (status first, so a mail backlog never delays the
expiry sweep) with RQ's scheduler (it runs the retries' back-off), plus a ticker thread that
queues the periodic jobs. Any number of worker processes may run: the ticker takes a Redis lock
(``SET NX PX``) per period, so one sweep is queued per STATUS_SWEEP_SECONDS fleet-wide, and the
sweep itself is atomic per dead server, so it never announces one twice.

The default class is RQ's forking ``Worker`` (each job in a child "horse": a SIGKILLed horse's
job is retried within seconds); ``--simple`` runs ``SimpleWorker`` (faster, but a job of a
killed SimpleWorker is stranded until RQ's maintenance finds it). RQ needs a Redis client with
``decode_responses=False``; the jobs open their own decoded client.
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any

import redis
from rq import SimpleWorker, Worker

from shared import jobs, keys
from shared.config import Config, ConfigError

MAINTENANCE_SECONDS = 30  # how often RQ looks for jobs abandoned by dead workers
TICK_SECONDS = 0.25


class Ticker(threading.Thread):
    """Queues ``sweep_status`` every STATUS_SWEEP_SECONDS and ``trim_inboxes`` every
    MESSAGE_TRIM_SECONDS, each at most once per period across all worker processes."""

    def __init__(self, url: str, config: Config, name: str):
        super().__init__(name="ssm-ticker", daemon=True)
        self.conn = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self.owner = name
        self.stopping = threading.Event()
        self.periodic = [(keys.status_sweep_lock(), config.sweep_interval, "sweep_status"),
                         (keys.inbox_trim_lock(), config.trim_interval, "trim_inboxes")]

    def run(self) -> None:
        while not self.stopping.wait(TICK_SECONDS):
            try:
                self.tick()
            except redis.RedisError as err:  # Redis away for a moment: try again next tick
                print(f"ssm worker: ticker: {err}", file=sys.stderr, flush=True)

    def tick(self) -> None:
        for lock, every, func in self.periodic:
            if self.conn.set(lock, self.owner, nx=True, px=every * 1000):
                jobs.enqueue_periodic(self.conn, func, ttl=max(10, 2 * every))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.worker",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--simple", action="store_true", help="SimpleWorker (no fork per job)")
    parser.add_argument("--burst", action="store_true",
                        help="work until the queues are empty, then exit (no ticker)")
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    opts = parser.parse_args(argv)
    try:
        config = Config.from_env()
        url = config.require_redis()
    except ConfigError as err:
        print(f"ssm worker: configuration error: {err}", file=sys.stderr)
        return 2
    conn: Any = redis.Redis.from_url(url)  # RQ needs bytes replies
    try:
        conn.ping()
    except redis.RedisError as err:
        print(f"ssm worker: cannot reach Redis at REDIS_URL={url}: {err}", file=sys.stderr)
        return 1
    cls = SimpleWorker if opts.simple else Worker
    worker = cls([jobs.STATUS_QUEUE, jobs.MAIL_QUEUE], connection=conn,
                 maintenance_interval=MAINTENANCE_SECONDS)
    ticker = None
    if not opts.burst:
        ticker = Ticker(url, config, worker.name)
        ticker.start()
    try:
        worker.work(burst=opts.burst, with_scheduler=not opts.burst,
                    logging_level="WARNING" if opts.quiet else "INFO")
    finally:
        if ticker is not None:
            ticker.stopping.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
