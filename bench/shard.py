"""How many broadcasts one shard sustains: every inbox shares the ``{msg}`` hash tag, so on a
Redis Cluster all messaging lives on the one node that serves that slot.

``python -m bench.shard [--servers 200,1000] [--seconds 3]`` starts an embedded Redis and an
embedded 3-master cluster, registers N servers, and calls ``messages.deliver(to="*")`` (the
``message.send`` broadcast script) from one client as fast as it answers, then from 4 threads.
It prints broadcasts/s and inbox entries/s for each, and the ratio cluster / single Redis: the
cluster adds no capacity to messaging (one slot, one node), only the client-side routing cost.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from shared import keys
from shared.config import Config
from shared.redis_conn import connect, connect_cluster, primaries
from shared.storage import messages
from stack.embedded import EmbeddedCluster, EmbeddedRedis


def rate(r: Any, config: Config, servers: int, seconds: float, threads: int) -> float:
    """Broadcasts per second to ``servers`` inboxes."""
    for node in primaries(r):
        node.flushall()
    r.sadd(keys.servers_all(), *[f"s{i:05}" for i in range(servers)])
    done = [0] * threads
    stop = time.monotonic() + seconds

    def loop(n: int) -> None:
        while time.monotonic() < stop:
            messages.deliver(r, config, "*", "bench", "message", {"body": "x" * 64})
            done[n] += 1

    workers = [threading.Thread(target=loop, args=(n,)) for n in range(threads)]
    start = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / (time.monotonic() - start)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.shard")
    ap.add_argument("--servers", default="200,1000")
    ap.add_argument("--seconds", type=float, default=3.0)
    opts = ap.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="ssm-shard-"))
    single = EmbeddedRedis(base / "single", appendonly=True).start()
    cluster = EmbeddedCluster(base / "cluster", appendonly=True).start()
    config = dataclasses.replace(Config(), message_send_budget=0)
    try:
        clients = {"single": connect(single.url), "cluster": connect_cluster(cluster.url)}
        for n in (int(x) for x in opts.servers.split(",")):
            for threads in (1, 4):
                got = {name: rate(r, config, n, opts.seconds, threads)
                       for name, r in clients.items()}
                print(f"{n:5} servers, {threads} client thread(s): "
                      + ", ".join(f"{k} {v:7.0f} broadcasts/s ({v * n:9.0f} entries/s)"
                                  for k, v in got.items())
                      + f", cluster/single {got['cluster'] / got['single']:.2f}", flush=True)
    finally:
        cluster.stop()
        single.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
