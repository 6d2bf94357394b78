"""Helpers for tests that start the project's processes or read what they leave (not a test
module: no tests here, and no test module imports another; tests/test_house.py checks).

``get``/``request``/``call`` speak HTTP; ``gunicorn``, ``spawn_relay`` and ``spawn_worker`` start
the Procfile's processes and ``stop`` ends one with whatever it started; ``procfile`` reads the
Procfile; ``dump`` is every key and value of a Redis as text.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from shared.redis_conn import scan_keys
from stack.embedded import free_port
from tests.conftest import ADMIN_TOKEN, wait_for

ROOT = Path(__file__).resolve().parent.parent


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 10
        ) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def request(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body else None
    req = urllib.request.Request(url, method=method, data=data,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def call(method, url, body=None, token=None, timeout=30):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, method=method, headers=headers,
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, json.loads(resp.read() or b"{}")


@contextmanager
def gunicorn(redis_url: str, **env: str) -> Iterator[str]:
    """The Procfile's web process (one worker unless ``WEB_CONCURRENCY`` is given) on a free
    port, with ``env`` added to its environment; yields its base URL once /readyz answers."""
    port = free_port()
    full = dict(os.environ, REDIS_URL=redis_url, PORT=str(port), WEB_CONCURRENCY="1",
                SSM_ADMIN_TOKEN=ADMIN_TOKEN, SSM_SCRYPT_LOG2_N="4", **env)
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "wsgi:app", "-c",
                             "shared/gunicorn_conf.py"], cwd=ROOT, env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://{env.get('WEB_HOST', '127.0.0.1')}:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if call("GET", url + "/readyz", timeout=1)[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(proc.stderr.read().decode())
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def spawn_relay(redis_url: str, tmp_path: Path, **env: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    full = dict(os.environ, REDIS_URL=redis_url, RELAY_PORT=str(port), RELAY_HOST="127.0.0.1",
                RELAY_MAX_PER_IP="0", **env)
    log = open(tmp_path / f"relay-{port}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "relay"], cwd=ROOT, env=full, stdout=log,
                            stderr=subprocess.STDOUT)
    def up() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    wait_for(up, 10, "relay", every=0.1)
    return proc, port


def spawn_worker(redis_url: str, tmp_path: Path, *args: str, **env: str) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if not k.startswith("SSM_")}
    full.update(REDIS_URL=redis_url, STATUS_SWEEP_SECONDS="1", PYTHONUNBUFFERED="1", **env)
    log = open(tmp_path / "worker.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "shared.worker", *args], cwd=ROOT, env=full,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    try:  # whatever it started (a worker's queue processes) goes with it
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))


def dump(r: Any) -> str:
    """Every key and value in the test Redis as text, to search for a secret."""
    readers = {"string": r.get, "hash": r.hgetall, "set": r.smembers,
               "zset": lambda k: r.zrange(k, 0, -1, withscores=True),
               "list": lambda k: r.lrange(k, 0, -1), "stream": lambda k: r.xrange(k)}
    return "\n".join(f"{k} {readers[r.type(k)](k)}" for k in scan_keys(r, "*"))
