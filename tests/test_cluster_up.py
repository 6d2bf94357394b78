"""`python -m shared.up --cluster`: a local 3-master + 3-replica cluster and a queue Redis from the
embedded binary, the Procfile's processes pointed at them; SIGTERM stops all, Redis last."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from stack.embedded import binary, free_port
from tests.helpers import request as _request

ROOT = Path(__file__).resolve().parent.parent


def _start(env: dict[str, str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "shared.up", "--cluster"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
        try:
            if _request("GET", f"http://127.0.0.1:{port}/readyz")[0] == 200:
                return proc
        except OSError:
            pass
        assert time.monotonic() < deadline, "stack did not become ready"
        time.sleep(0.3)


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    out = proc.stdout.read().decode()  # type: ignore[union-attr]
    assert code == 0, out
    return out


def test_up_cluster_runs_everything_on_a_cluster_and_sigterm_leaves_nothing(tmp_path):
    port, relay_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "REDIS_CLUSTER", "REDIS_QUEUE_URL")}
    env.update(PORT=str(port), RELAY_PORT=str(relay_port), SSM_DATA_DIR=str(tmp_path / "data"),
               SSM_REDIS_PORT=str(free_port()), SSM_ADMIN_TOKEN="up-admin-token-0123",
               SSM_SCRYPT_LOG2_N="4", PYTHONUNBUFFERED="1")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    kids: list[psutil.Process] = []
    proc = _start(env, port)
    try:
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
        status, body = _request("POST", f"http://127.0.0.1:{port}/v1/players",
                                {"name": "Clusterer", "password": "secret1"})
        assert status == 201, body
        # the admin CLI beside it, with no setting (README): finds the cluster and its queue
        cli_env = {k: v for k, v in env.items() if k not in ("PORT", "RELAY_PORT")}
        cli = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "server", "create",
                              "From CLI"], cwd=ROOT, env=cli_env, capture_output=True,
                             text=True, timeout=60)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert json.loads(cli.stdout)["name"] == "From CLI"
    finally:
        out = _stop(proc)
    assert "3 masters + 3 replicas" in out
    assert "+10000" in out
    time.sleep(0.2)
    alive = [p for p in kids if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [" ".join(p.cmdline()) for p in alive]
    ports = json.loads((tmp_path / "data" / "ports.json").read_text())

    # a quick restart: the same cluster, on the recorded ports, with its data
    proc = _start(env, port)
    try:
        status, body = _request("GET", f"http://127.0.0.1:{port}/v1/players/Clusterer")
        assert status == 200 and body["name"] == "Clusterer", body
    finally:
        _stop(proc)
    assert json.loads((tmp_path / "data" / "ports.json").read_text()) == ports


def test_a_cluster_folder_from_before_ports_were_recorded_keeps_its_ports(tmp_path):
    from stack.up import existing_nodes

    for i, port in enumerate([31001, 31002, 31003, 31004, 31005, 31006, 30001]):
        node = tmp_path / "cluster" / f"node-{port}"
        node.mkdir(parents=True)
        (node / "nodes.conf").write_text("x")
        os.utime(node / "nodes.conf", (1000 + i, 1000 + i if port != 30001 else 10))
    assert existing_nodes(tmp_path) == [31001, 31002, 31003, 31004, 31005, 31006]


def test_up_cluster_refuses_a_redis_url(tmp_path):
    env = dict(os.environ, REDIS_URL="redis://127.0.0.1:1", SSM_DATA_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "shared.up", "--cluster"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "unset REDIS_URL" in proc.stderr


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
