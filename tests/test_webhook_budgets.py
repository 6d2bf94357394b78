"""Webhook budgets (SPEC §16): one deadline for a whole attempt, every attempt logged; the
delivery queue bounded; ban pushes never behind webhook jobs."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from shared import delivery, jobs
from shared.storage import webhooks


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
