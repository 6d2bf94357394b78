"""Worker benchmark: mail notice latency and jobs/s per worker class (docs/WORKERS.md).

``python -m bench.worker_bench [--quick]`` starts its own stack (embedded Redis + the Procfile's
web, relay and worker; bench/stack.py) and prints:

- mail notice latency: ``POST /v1/mail`` sent -> the ``PUSH`` line with that mail's id read on a
  relay connection AUTHed as the recipient's server (p50, p99), sequential requests;
- jobs/s of ONE worker process for each class (forking ``Worker``, ``SimpleWorker``), in the
  same run: N real ``notify_mail`` jobs (each delivers a notice) queued, then
  ``python -m shared.worker --burst`` drains them; the rate is taken from the first to the last
  notice's stream time, so process start-up is not counted.

Functions return dicts, for ``python -m bench`` to call
(bench/relay_glue.py: ``mail_latency(stack)``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.stack import ADMIN_TOKEN, ROOT, Stack
from shared import keys
from shared.auth import new_id
from shared.redis_conn import connect
from shared.storage import mail
from stack.embedded import EmbeddedRedis


class Http:
    """One keep-alive HTTP connection to the web process."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def call(self, method: str, path: str, body: Any = None, token: str = "") -> Any:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                          headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: {resp.status} {data[:200]!r}")
        return json.loads(data) if data else None


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def mail_latency(stack: Stack, n: int = 200) -> dict[str, Any]:
    """POST /v1/mail -> PUSH on the relay, ``n`` sequential mails to one online player."""
    web = Http(stack.port)
    tag = new_id()[:6]
    srv = web.call("POST", "/v1/servers", {"name": f"bench-{tag}"}, ADMIN_TOKEN)
    web.call("PUT", f"/v1/servers/{srv['id']}/status",
             {"name": "bench", "host": "127.0.0.1", "port": 28763, "map": "ac_desert",
              "mode": "ctf", "players": [], "max_players": 16, "version": "1.3",
              "public": False}, srv["key"])
    tokens = {}
    for who in ("rcpt", "sndr"):
        name = f"{who}{tag}"
        web.call("POST", "/v1/players", {"name": name, "password": "benchpass1"})
        tokens[who] = web.call("POST", "/v1/sessions",
                               {"name": name, "password": "benchpass1"})["token"]
    web.call("POST", f"/v1/servers/{srv['id']}/players", {"token": tokens["rcpt"]}, srv["key"])
    relay = socket.create_connection(("127.0.0.1", stack.relay_port), timeout=10)
    lines = relay.makefile("rb")
    lines.readline()  # CONNECTED
    relay.sendall(b"MODE SERVER\r\n")
    lines.readline()
    relay.sendall(json.dumps({"cmd": "AUTH", "args": f"{srv['id']} {srv['key']}"}).encode()
                  + b"\r\n")
    reply = json.loads(lines.readline())
    if reply.get("state") != "OK":
        raise RuntimeError(f"relay AUTH failed: {reply}")
    samples = []
    try:
        for i in range(n):
            start = time.perf_counter()
            mail_id = web.call("POST", "/v1/mail", {"to": f"rcpt{tag}", "body": f"m{i}"},
                               tokens["sndr"])["id"]
            while True:
                msg = json.loads(lines.readline())
                if msg.get("event") == "mail" and msg.get("data", {}).get("mail_id") == mail_id:
                    break
            samples.append((time.perf_counter() - start) * 1000)
    finally:
        relay.close()
    return {"mail_notice_p50_ms": round(statistics.median(samples), 2),
            "mail_notice_p99_ms": round(_pct(samples, 0.99), 2), "mail_notice_samples": n}


def jobs_per_second(redis_url: str, simple: bool, n: int = 1000) -> dict[str, Any]:
    """One ``python -m shared.worker --burst`` process drains ``n`` real notify_mail jobs.

    ``redis_url`` must be a Redis no other worker serves (they would share the jobs)."""
    r = connect(redis_url)
    tag = new_id()[:8]
    sid, lname = f"jb{tag}", f"jb{tag}"
    r.sadd(keys.servers_all(), sid)
    r.zadd(keys.status_live(), {sid: int(time.time() * 1000)})
    r.hset(keys.player(lname), mapping={"id": tag, "name": lname, "server": sid})
    for i in range(n):
        fields = {"from": "bench", "subject": f"s{i}", "body": "b", "at": time.time()}
        mail.store_with_notice(r, lname, new_id(), fields, "bench", "", 0, n + 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSM_")}
    env.update(REDIS_URL=redis_url, STATUS_TTL="3600", MAILBOX_MAX=str(n + 1))
    cmd = [sys.executable, "-m", "shared.worker", "--burst", "--quiet"] + (["--simple"] * simple)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, timeout=600)
    wall = time.perf_counter() - start
    ids = [i for i, _ in r.xrange(keys.inbox(sid))]
    if len(ids) != n:
        raise RuntimeError(f"expected {n} notices, got {len(ids)}")
    span = (int(ids[-1].split("-")[0]) - int(ids[0].split("-")[0])) / 1000
    return {"worker_class": "SimpleWorker" if simple else "Worker", "jobs": n,
            "jobs_per_s": round((n - 1) / span, 1) if span else float("inf"),
            "wall_s_with_startup": round(wall, 2)}


def run(quick: bool = False) -> dict[str, Any]:
    """Everything, against a stack of its own."""
    stack = Stack(only=("web", "relay", "worker"))
    try:
        stack.start()
        out: dict[str, Any] = mail_latency(stack, n=50 if quick else 300)
        n = 300 if quick else 2000
        # a Redis of their own: the stack's worker would take a share of the jobs
        quiet = EmbeddedRedis(stack.workdir / "jobs-redis", appendonly=True).start()
        try:
            out["jobs"] = [jobs_per_second(quiet.url, simple, n) for simple in (False, True)]
        finally:
            quiet.stop()
        return out
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.worker_bench",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples")
    res = run(ap.parse_args(argv).quick)
    print(f"{'figure':<44}{'value':>12}")
    print(f"{'mail notice POST->relay PUSH p50 (ms)':<44}{res['mail_notice_p50_ms']:>12}")
    print(f"{'mail notice POST->relay PUSH p99 (ms)':<44}{res['mail_notice_p99_ms']:>12}")
    for job in res["jobs"]:
        label = f"jobs/s, one {job['worker_class']} ({job['jobs']} notify_mail)"
        print(f"{label:<44}{job['jobs_per_s']:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
