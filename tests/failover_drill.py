"""A failover drill on a local cluster: kill the master serving a key under a write load, let its
replica take over, and count what was acknowledged but lost. Shared by ``python -m bench.failover``
(figures) and tests/test_failover.py (assertions), so both run the same scenario.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from shared.config import Config
from shared.redis_conn import connect_cluster
from stack.embedded import EmbeddedCluster, EmbeddedRedis

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
