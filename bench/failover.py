"""Failover under a write load: kill a master, let its replica take over, count what was lost.

``python -m bench.failover [--wait-replicas N ...] [--rounds K] [--replicas R]`` starts its own
cluster (3 masters with R replicas each, default 2, cluster-node-timeout 2000 ms,
``stack.embedded.EmbeddedCluster``) and a queue Redis,
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
from pathlib import Path
from typing import Any

from stack.embedded import EmbeddedCluster, EmbeddedRedis
from tests.failover_drill import heal, kill_master_under_load


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
