"""`python -m shared.up` on a machine with no REDIS_URL: embedded Redis + the Procfile's processes.

SIGTERM stops everything (nothing left running) and data survives a stop and a start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from shared.embedded import binary, free_port

ROOT = Path(__file__).resolve().parent.parent


def _request(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body else None
    req = urllib.request.Request(url, method=method, data=data,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


class Stack:
    def __init__(self, data_dir: Path):
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env.update(PORT=str(self.port), RELAY_PORT=str(free_port()), SSM_DATA_DIR=str(data_dir),
                   SSM_REDIS_PORT=str(free_port()), SSM_ADMIN_TOKEN="up-admin-token-0123",
                   STATUS_TTL="30", SSM_SCRYPT_LOG2_N="4")
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        self.proc = subprocess.Popen([sys.executable, "-m", "shared.up"], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stdout.read().decode()
            try:
                if _request("GET", self.url + "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        pytest.fail("stack did not become ready")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def test_up_runs_everything_and_sigterm_leaves_nothing(tmp_path):
    stack = Stack(tmp_path / "data")
    try:
        stack.wait_ready()
        kids = stack.descendants()
        exes = [" ".join(p.cmdline()) for p in kids]
        assert any(binary() in cmd for cmd in exes), exes  # the embedded server, not a system one
        status, body = _request("POST", stack.url + "/v1/players",
                                {"name": "Keeper", "password": "secret1"})
        assert status == 201, body
    finally:
        code = stack.stop()
    assert code == 0
    time.sleep(0.2)
    alive = [p for p in kids if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [" ".join(p.cmdline()) for p in alive]
    assert (tmp_path / "data").exists()

    again = Stack(tmp_path / "data")
    try:
        again.wait_ready()
        status, body = _request("POST", again.url + "/v1/sessions",
                                {"name": "keeper", "password": "secret1"})
        assert status == 200, body
        assert body["player"]["name"] == "Keeper"
    finally:
        again.stop()


def test_procfile_commands_come_from_the_interpreters_folder(tmp_path, redis_server):
    """`venv/bin/python -m shared.up` without an activated venv still runs the venv's tools:
    the Procfile's `python` is the one next to the interpreter running shared.up."""
    procfile = tmp_path / "Procfile"
    procfile.write_text("probe: python -c 'import sys; print(\"exe=\" + sys.executable)'\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSM_")}
    env.update(REDIS_URL=redis_server.url, PATH="/nonexistent", PYTHONUNBUFFERED="1")
    out = subprocess.run([sys.executable, "-m", "shared.up", "--procfile", str(procfile)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert f"exe={os.path.dirname(sys.executable)}{os.sep}python" in out.stdout, out
