"""Failover under a write load: kill a master, let its replica take over, count what was lost.

``python -m bench.failover [--wait-replicas N ...] [--rounds K] [--replicas R]`` starts its own
cluster (3 masters with R replicas each, default 2, cluster-node-timeout 2000 ms,
``shared.embedded.EmbeddedCluster``) and a queue Redis,
builds the HTTP app in-process on a RedisCluster client, and writes server settings (one write
operation per request: ``PUT /v1/servers/{id}/settings/k<i>``) as fast as one client can while it
SIGKILLs the master serving that server's slot. It prints, per round: writes acknowledged (200),
how many of them are missing afterwards, the answers during the failover (503 ``unavailable``,
never a 500) and the 503 window in seconds (first failed answer to the first 200 after it).
tests/test_failover.py runs the same scenario and asserts it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.config import Config
from shared.embedded import EmbeddedCluster, EmbeddedRedis
from shared.redis_conn import connect_cluster

ADMIN = "failover-admin-token-0123456789"


@dataclass
class Result:
    acked: list[int] = field(default_factory=list)  # setting numbers answered 200
    lost: list[int] = field(default_factory=list)  # acknowledged, missing afterwards
    answers: Counter = field(default_factory=Counter)  # (status, code) of every non-200
    window_s: float = 0.0  # first failure -> first success after it
    writes: int = 0

    def line(self) -> str:
        return (f"writes {self.writes}, acknowledged {len(self.acked)}, lost {len(self.lost)}, "
                f"503 window {self.window_s:.2f} s, failures {dict(self.answers)}")


def app_for(cluster: EmbeddedCluster, queue: EmbeddedRedis, wait_replicas: int) -> Any:
    from wsgi import create_app

    config = Config(redis_url=cluster.url, redis_cluster=1, redis_queue_url=queue.url,
                    admin_token=ADMIN, scrypt_log2_n=4, settings_keys_max=1_000_000,
                    wait_replicas=wait_replicas, wait_timeout_ms=1000, web_metrics=0)
    return create_app(config, connect_cluster(cluster.url)).test_client()


def owner(cluster: EmbeddedCluster, key: str) -> EmbeddedRedis:
    """The running node that is the master of ``key``'s slot now."""
    r = connect_cluster(cluster.url)
    try:
        port = r.get_node_from_key(key).port
    finally:
        r.close()
    return next(n for n in cluster.nodes if n.port == port)


def kill_master_under_load(cluster: EmbeddedCluster, queue: EmbeddedRedis,
                           wait_replicas: int, before_s: float = 1.0, after_s: float = 1.0,
                           limit_s: float = 30.0) -> tuple[Result, EmbeddedRedis]:
    """One round; returns the result and the killed node (restart it to heal the cluster)."""
    from shared import keys

    client = app_for(cluster, queue, wait_replicas)
    made = client.post("/v1/servers", json={"name": "victim"},
                       headers={"Authorization": f"Bearer {ADMIN}"})
    assert made.status_code == 201, made.json
    sid, auth = made.json["id"], {"Authorization": f"Bearer {made.json['key']}"}
    victim = owner(cluster, keys.server(sid))
    res = Result()
    failed_at: float | None = None
    killed = threading.Event()
    start = time.monotonic()

    def kill() -> None:
        time.sleep(before_s)
        victim.kill()
        killed.set()

    threading.Thread(target=kill, daemon=True).start()
    recovered_at: float | None = None
    while time.monotonic() - start < limit_s:
        res.writes += 1
        i = res.writes
        resp = client.put(f"/v1/servers/{sid}/settings/k{i}", json={"value": i}, headers=auth)
        now = time.monotonic()
        if resp.status_code == 200:
            res.acked.append(i)
            if failed_at is not None and recovered_at is None:
                recovered_at = now
                res.window_s = now - failed_at
        else:
            res.answers[(resp.status_code, (resp.json or {}).get("error", {}).get("code"))] += 1
            if failed_at is None:
                failed_at = now
        if recovered_at is not None and now - recovered_at > after_s:
            break
    stored = _settings(client, sid, auth)
    res.lost = [i for i in res.acked if stored.get(f"k{i}") != i]
    return res, victim


def _settings(client: Any, sid: str, auth: dict[str, str]) -> dict[str, Any]:
    for _ in range(100):
        resp = client.get(f"/v1/servers/{sid}/settings", headers=auth)
        if resp.status_code == 200:
            return resp.json["settings"]
        time.sleep(0.1)
    raise RuntimeError(f"settings unreadable after the failover: {resp.status_code}")


def heal(cluster: EmbeddedCluster, victim: EmbeddedRedis) -> None:
    """Restart the killed node (it rejoins as a replica of its successor) and wait for it."""
    victim.start()
    cluster.wait_ok(60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.failover")
    parser.add_argument("--wait-replicas", type=int, nargs="*", default=[1, 0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=2,
                        help="per master; with 1, SSM_WAIT_REPLICAS=1 refuses the failed "
                             "shard's writes until the killed node is back")
    opts = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="ssm-failover-"))
    cluster = EmbeddedCluster(base / "cluster", masters=3, replicas=opts.replicas,
                              appendonly=False)
    queue = EmbeddedRedis(base / "queue", appendonly=False)
    queue.start()
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        cluster.start(60)
        for wait in opts.wait_replicas:
            for n in range(opts.rounds):
                res, victim = kill_master_under_load(cluster, queue, wait)
                print(f"SSM_WAIT_REPLICAS={wait} round {n + 1}: {res.line()}", flush=True)
                out.setdefault(str(wait), []).append(
                    {"writes": res.writes, "acked": len(res.acked), "lost": len(res.lost),
                     "window_s": round(res.window_s, 2),
                     "failures": {f"{s} {c}": k for (s, c), k in res.answers.items()}})
                heal(cluster, victim)
    finally:
        cluster.stop()
        queue.stop()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
