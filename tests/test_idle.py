"""An idle worker writes next to nothing and logs nothing; a lapsed heartbeat is still swept
(and that is logged). Measured on the test Redis with Redis's own count of data changes
(``rdb_changes_since_last_save``: the test server never saves). Figures: ``python -m bench.idle``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rq import Queue, Worker

from shared import keys
from shared.config import Config
from shared.redis_conn import connect
from tests import conftest
from worker.main import QUEUES

ROOT = Path(__file__).resolve().parent.parent
IDLE_SECONDS = 20
# Allowed data changes in IDLE_SECONDS: RQ's mail scheduler heartbeat is 3 changes per 5 s (12
# here); before the fix the 1 s sweep jobs and two 1 s scheduler heartbeats made several hundred.
MAX_CHANGES = 40


def changes(r) -> int:
    return int(r.info("persistence")["rdb_changes_since_last_save"])


def wait_for(check: Any, timeout: float, what: str) -> Any:
    return conftest.wait_for(check, timeout, what, every=0.1)


def started(queue_url: str) -> bool:
    """Start-up is over: every queue worker registered and idle (one per queue, WEBHOOK_WORKERS
    on the webhooks queue), the ticker's first inbox trim queued (its lock taken) and run (no
    job waiting)."""
    conn = connect(queue_url)
    try:
        workers = Worker.all(connection=conn)
        want = len(QUEUES) - 1 + Config.__dataclass_fields__["webhook_workers"].default
        return (len(workers) == want and all(w.get_state() == "idle" for w in workers)
                and bool(conn.exists(keys.inbox_trim_lock()))
                and all(Queue(q, connection=conn).count == 0 for q in QUEUES))
    finally:
        conn.close()


def test_idle_worker_writes_next_to_nothing_and_logs_nothing(redis_server, r, tmp_path,
                                                              queue_url):
    r.zadd(keys.status_live(), {"fresh": int(time.time() * 1000)})  # live, not lapsed
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSM_")}
    env.update(REDIS_URL=redis_server.url, STATUS_TTL="60", STATUS_SWEEP_SECONDS="1",
               PYTHONUNBUFFERED="1")
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "shared.worker"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: proc.poll() is None and started(queue_url), 30, "the worker's start-up")
        assert proc.poll() is None, log_path.read_text()
        before, seen = changes(r), len(log_path.read_text().splitlines())
        time.sleep(IDLE_SECONDS)  # the idle time measured: letting it pass is the test
        changed = changes(r) - before
        logged = log_path.read_text().splitlines()[seen:]
        assert changed <= MAX_CHANGES, f"{changed} changes in {IDLE_SECONDS} s idle"
        assert logged == []

        r.zadd(keys.status_live(), {"fresh": int(time.time() * 1000) - 61_000})  # now lapsed
        wait_for(lambda: r.zscore(keys.status_live(), "fresh") is None, 10, "the sweep")
        wait_for(lambda: "sweep: expired 1 server(s): fresh" in log_path.read_text(), 5,
                 "the sweep's log line")
    finally:
        proc.terminate()
        proc.wait(20)
