"""Webhook budgets (docs/WEBHOOKS.md): one deadline for a whole attempt, every attempt logged; the
delivery queue bounded; ban pushes never behind webhook jobs."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from rq import Queue
from rq.job import Job

from shared import delivery, events, keys, queues
from shared.storage import webhooks
from worker import jobs
from worker.ticker import Ticker


class Trickle:
    """A real HTTP endpoint on 127.0.0.1 that answers ``200 OK`` and then one header line a
    second, never ending its headers; records how long each client stayed."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/slow"
        self.stayed: list[float] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        start = time.monotonic()
        with conn:
            conn.settimeout(30)
            try:
                conn.recv(65536)  # the request
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                for i in range(60):
                    time.sleep(1)
                    conn.sendall(b"X-Pad-%d: x\r\n" % i)
            except OSError:
                pass
        self.stayed.append(time.monotonic() - start)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def trickle() -> Iterator[Trickle]:
    t = Trickle()
    yield t
    t.close()


@pytest.fixture
def job_env(monkeypatch: Any, redis_server: Any) -> Any:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "2")
    jobs._env.cache_clear()
    yield monkeypatch
    jobs._env.cache_clear()


def test_a_trickling_endpoint_gets_one_deadline_for_the_whole_attempt(trickle):
    start = time.monotonic()
    got = delivery.post(trickle.url, "secret", "json", "record.top", "b:x/1-0", 1.0, {},
                        timeout=2, allow_private=True)
    took = time.monotonic() - start
    assert got.error == "timed out after 2 s" and got.status is None
    assert took < 3.0, took  # not 60 header lines later, nor the job's timeout


def test_a_timed_out_attempt_is_logged_in_the_deliveries(job_env, r, trickle):
    webhooks.create(r, "h1", trickle.url, ["record.top"], "json", "s3cret-s3cret-s3cret", 0)
    start = time.monotonic()
    assert jobs.deliver_webhook("h1", "b:ctf/1-0", "record.top", 1717000000.0,
                                json.dumps({"board": "ctf"})) == "dropped"  # no job: 1 try
    assert time.monotonic() - start < 3.5
    (attempt,) = webhooks.deliveries(r, "h1")
    assert attempt["error"] == "timed out after 2 s" and attempt["status"] is None
    assert attempt["outcome"] == "dropped" and 1900 <= attempt["ms"] < 3000


def emit_many(r: Any, n: int) -> None:
    for i in range(n):
        tx = r.pipeline()
        events.emit(tx, "status", "server.online", {"id": f"s{i}"})
        tx.execute()


def test_the_delivery_queue_keeps_the_newest_deliveries_up_to_its_cap(job_env, r, queue_url):
    job_env.setenv("WEBHOOK_QUEUE_MAX", "20")
    jobs._env.cache_clear()
    webhooks.create(r, "h1", "http://127.0.0.1:9/a", ["server.online"], "json", "s" * 20, 0)
    webhooks.create(r, "h2", "http://127.0.0.1:9/b", ["record.top"], "json", "s" * 20, 0)
    q = redis.Redis.from_url(queue_url)
    queue = Queue(jobs.WEBHOOKS_QUEUE, connection=q)
    assert queues.enqueue_drain(q, "b:ctf")  # a drain waiting at the front stays
    emit_many(r, 250)  # more than one drain batch
    assert jobs.drain_outbox("status") == 250
    ids = queue.job_ids
    assert len(ids) == 20 and ids[0] == "whdrain-b_3actf"  # 20 jobs waiting at most
    kept = [json.loads(queue.fetch_job(i).args[4])["id"] for i in ids[1:]]
    assert kept == [f"s{i}" for i in range(231, 250)]  # the newest, in order
    assert webhooks.public(webhooks.get(r, "h1"))["dropped"] == 231
    assert webhooks.public(webhooks.get(r, "h2"))["dropped"] == 0
    assert webhooks.counts(r)["dropped"] == 231
    assert len(list(q.scan_iter(Job.key_for("wh-h1-*")))) == 19  # dropped jobs' hashes gone


def test_ban_pushes_never_wait_behind_webhook_jobs(api, client, r, config, queue_url):
    """The webhooks queue has workers of its own; a ban reaches the inboxes on the request
    path, and the worker's redelivery of an unfinished push runs on the status queue."""
    q = redis.Redis.from_url(queue_url)
    webhooks_queue = Queue(jobs.WEBHOOKS_QUEUE, connection=q)
    for i in range(500):  # a webhook backlog nobody works on
        webhooks_queue.enqueue_call("shared.jobs.deliver_webhook",
                                    args=("h1", f"bans/{i}-0", "ban.created", 0.0, "{}"),
                                    job_id=f"wh-h1-{i}")
    sid, srv = api.server("one")
    made = client.post("/v1/bans", json={"ip": "192.0.2.1", "reason": "x"}, headers=api.admin)
    assert made.status_code == 201
    (entry,) = client.get("/v1/messages", headers=srv).json["messages"]
    assert entry["type"] == "ban" and entry["ban"]["id"] == made.json["id"]
    # a push left unfinished (a web process died): the ticker queues its redelivery on the
    # status queue, never behind the webhooks backlog
    r.zadd(keys.ban_outbox(), {f"ban:{made.json['id']}": 1})
    Ticker(config, "t").tick()
    status = Queue(queues.STATUS_QUEUE, connection=q)
    assert "shared.jobs.ban_outbox" in [status.fetch_job(i).func_name for i in status.job_ids]
    assert len(webhooks_queue) == 500


def test_deleting_a_webhook_takes_its_waiting_deliveries_out_of_the_queue(api, client, r,
                                                                        queue_url):
    q = redis.Redis.from_url(queue_url)
    queue = Queue(jobs.WEBHOOKS_QUEUE, connection=q)
    made = [client.post("/v1/webhooks", json={"url": f"https://example.org/{i}",
                                              "events": ["ban.created"]},
                        headers=api.admin).json["id"] for i in range(2)]
    for i in range(300):
        hook = made[i % 2]
        queue.enqueue_call("shared.jobs.deliver_webhook",
                           args=(hook, f"bans/{i}-0", "ban.created", 0.0, "{}"),
                           job_id=jobs.delivery_job_id(hook, f"bans/{i}-0"))
    assert client.delete(f"/v1/webhooks/{made[0]}", headers=api.admin).status_code == 204
    left = queue.job_ids
    assert len(left) == 150 and all(i.startswith(f"wh-{made[1]}-") for i in left)
    assert left == sorted(left, key=lambda i: int(i.split("_2f")[1].split("-")[0]))  # in order
    assert not list(q.scan_iter(Job.key_for(f"wh-{made[0]}-*")))
