"""`python -m shared.up --cluster`: a local 3-master + 3-replica cluster and a queue Redis from the
embedded binary, the Procfile's processes pointed at them; SIGTERM stops all, Redis last."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from shared.embedded import binary, free_port
from tests.test_up import _request

ROOT = Path(__file__).resolve().parent.parent


def test_up_cluster_runs_everything_on_a_cluster_and_sigterm_leaves_nothing(tmp_path):
    port, relay_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "REDIS_CLUSTER", "REDIS_QUEUE_URL")}
    env.update(PORT=str(port), RELAY_PORT=str(relay_port), SSM_DATA_DIR=str(tmp_path / "data"),
               SSM_REDIS_PORT=str(free_port()), SSM_ADMIN_TOKEN="up-admin-token-0123",
               SSM_SCRYPT_LOG2_N="4", PYTHONUNBUFFERED="1")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    proc = subprocess.Popen([sys.executable, "-m", "shared.up", "--cluster"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    kids: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
            try:
                if _request("GET", f"http://127.0.0.1:{port}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "stack did not become ready"
            time.sleep(0.3)
        kids = psutil.Process(proc.pid).children(recursive=True)
        servers = [p for p in kids if binary() in " ".join(p.cmdline())]
        assert len(servers) == 7, [p.cmdline() for p in servers]  # 6 cluster nodes + queue
        assert sum("[cluster]" in " ".join(p.cmdline()) for p in servers) == 6, [
            p.cmdline() for p in servers]
        app = [p for p in kids if "gunicorn" in " ".join(p.cmdline())
               or "shared.worker" in " ".join(p.cmdline()) or "relay" in p.cmdline()]
        assert app
        for p in app:  # every Procfile process sees the cluster and the queue Redis
            environ = p.environ()
            assert environ["REDIS_CLUSTER"] == "1" and environ["REDIS_QUEUE_URL"]
        status, body = _request("GET", f"http://127.0.0.1:{port}/v1/status")
        assert (status, body) == (200, {"servers": []}), body
        with socket.create_connection(("127.0.0.1", relay_port), timeout=5) as s:
            assert s.recv(100).startswith(b'{"state": "OK", "msg": "CONNECTED')
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    out = proc.stdout.read().decode()  # type: ignore[union-attr]
    assert code == 0, out
    assert "3 masters + 3 replicas" in out
    time.sleep(0.2)
    alive = [p for p in kids if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [" ".join(p.cmdline()) for p in alive]


def test_up_cluster_refuses_a_redis_url(tmp_path):
    env = dict(os.environ, REDIS_URL="redis://127.0.0.1:1", SSM_DATA_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "shared.up", "--cluster"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "unset REDIS_URL" in proc.stderr


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
