"""Webhook benchmark (docs/WEBHOOKS.md): deliveries/s of one webhooks worker process, and the
latency from a new #1 record to its webhook POST.

``python -m bench.webhooks [--quick]`` starts an embedded Redis, makes a board and a live server
through the operations in-process (the Flask test client), and a receiver (a threaded HTTP
server on 127.0.0.1, so WEBHOOK_ALLOW_PRIVATE=1) that notes when each POST arrives:

- throughput, per worker class: N ``record.top`` events are emitted first (alternating new #1s),
  then ONE ``python -m shared.worker --queue webhooks`` process (its ticker drains the outbox,
  its RQ worker delivers); the rate is taken from the first to the last POST received, so
  process start-up is not counted. Forking ``Worker`` (the default) and ``SimpleWorker``;
- latency: with a worker idle, one new #1 at a time (``record.submit`` called -> the POST seen
  by the receiver), p50 and p99. It includes the ticker's poll (every 0.25 s), the drain job
  and the delivery job (a fork each with the default worker class).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from shared.config import Config
from shared.redis_conn import connect
from stack.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "bench-admin-token-0123456789"


class Receiver:
    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}  # score -> monotonic arrival
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.arrived.setdefault(body["data"]["score"], time.monotonic())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.arrived) >= n:
                return True
            time.sleep(0.01)
        return False


class World:
    def __init__(self, url: str):
        from wsgi import create_app

        config = Config(redis_url=url, admin_token=ADMIN, scrypt_log2_n=4,
                        webhook_allow_private=1)
        self.r = connect(url)
        self.c = create_app(config, self.r).test_client()
        self.admin = {"Authorization": f"Bearer {ADMIN}"}
        made = self._ok(self.c.post("/v1/servers", json={"name": "bench"}, headers=self.admin))
        self.sid, self.srv = made["id"], {"Authorization": f"Bearer {made['key']}"}
        self.heartbeat()
        for name in ("alpha", "bravo"):
            self._ok(self.c.post("/v1/players", json={"name": name, "password": "benchpass"}))
            token = self._ok(self.c.post("/v1/sessions", json={"name": name,
                                                               "password": "benchpass"}))["token"]
            self._ok(self.c.post(f"/v1/servers/{self.sid}/players", json={"token": token},
                                 headers=self.srv))
        self._ok(self.c.put("/v1/boards/bench", json={"order": "desc", "operator": "best"},
                            headers=self.admin))
        self.score = 0

    @staticmethod
    def _ok(resp: Any) -> Any:
        assert resp.status_code < 300, resp.get_data(as_text=True)
        return resp.json

    def heartbeat(self) -> None:
        body = {"name": "bench", "host": "127.0.0.1", "port": 28763, "map": "m", "mode": "ctf",
                "players": [], "max_players": 16, "version": "1", "public": True}
        self._ok(self.c.put(f"/v1/servers/{self.sid}/status", json=body, headers=self.srv))

    def hook(self, url: str) -> str:
        return self._ok(self.c.post("/v1/webhooks", json={"url": url, "events": ["record.top"]},
                                    headers=self.admin))["id"]

    def new_top(self) -> int:
        """One new #1 (the two players take turns): its score."""
        self.score += 1
        player = ("alpha", "bravo")[self.score % 2]
        self._ok(self.c.post("/v1/boards/bench/records",
                             json={"player": player, "score": self.score}, headers=self.srv))
        return self.score


def start_worker(url: str, simple: bool) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SSM_", "WEBHOOK_"))}
    env.update(REDIS_URL=url, WEBHOOK_ALLOW_PRIVATE="1", WORKER_METRICS_PORT="0")
    args = [sys.executable, "-m", "shared.worker", "--queue", "webhooks", "--quiet"]
    return subprocess.Popen(args + (["--simple"] if simple else []), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def throughput(url: str, n: int, simple: bool) -> float:
    """Deliveries/s of one worker process, first to last POST."""
    r = connect(url)
    r.flushall()
    world, rec = World(url), Receiver()
    world.hook(rec.url)
    for _ in range(n):
        world.new_top()
    proc = start_worker(url, simple)
    try:
        if not rec.wait(n, 60 + n / 5):
            raise RuntimeError(f"only {len(rec.arrived)} of {n} deliveries arrived")
    finally:
        stop(proc)
        rec.server.shutdown()
    times = sorted(rec.arrived.values())
    return (n - 1) / (times[-1] - times[0])


def latency(url: str, n: int) -> list[float]:
    """Milliseconds from record.submit called to the POST received, one event at a time."""
    r = connect(url)
    r.flushall()
    world, rec = World(url), Receiver()
    world.hook(rec.url)
    proc = start_worker(url, simple=False)
    out = []
    try:
        world.new_top()
        if not rec.wait(1, 30):  # warm: the worker is up
            raise RuntimeError("the worker delivered nothing")
        for i in range(n):
            if i % 50 == 0:
                world.heartbeat()
            start = time.monotonic()
            score = world.new_top()
            deadline = start + 10
            while score not in rec.arrived and time.monotonic() < deadline:
                time.sleep(0.001)
            if score not in rec.arrived:
                raise RuntimeError(f"event {score} not delivered in 10 s")
            out.append((rec.arrived[score] - start) * 1000)
            time.sleep(0.05)
    finally:
        stop(proc)
        rec.server.shutdown()
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(url: str, quick: bool) -> dict[str, Any]:
    n = 150 if quick else 600
    forking = throughput(url, n, simple=False)
    simple = throughput(url, n, simple=True)
    lat = latency(url, 60 if quick else 200)
    return {"webhook_deliveries_per_s_forking": round(forking, 1),
            "webhook_deliveries_per_s_simple": round(simple, 1),
            "webhook_simple_over_forking": round(simple / forking, 2),
            "webhook_latency_p50_ms": round(statistics.median(lat), 1),
            "webhook_latency_p99_ms": round(_pct(lat, 0.99), 1),
            "webhook_latency_samples": len(lat)}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(tmp, appendonly=False).start()
        try:
            figures = run(server.url, opts.quick)
        finally:
            server.stop()
    for k, v in figures.items():
        print(f"{k:40} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
