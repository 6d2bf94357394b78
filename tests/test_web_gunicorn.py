"""The web process as the Procfile runs it (gunicorn + shared/gunicorn_conf.py), over real HTTP.

Long-polls (`GET /v1/messages?wait=`) must not starve other requests: with one worker holding
more open long-polls than a sync or threaded worker has slots, a quick request is still
answered while they all wait.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from shared.embedded import free_port
from tests.conftest import ADMIN_TOKEN

ROOT = Path(__file__).resolve().parent.parent


def _call(method, url, body=None, token=None, timeout=30):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, method=method, headers=headers,
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, json.loads(resp.read() or b"{}")


@pytest.fixture
def web(redis_server, r):
    port = free_port()
    env = dict(os.environ, REDIS_URL=redis_server.url, PORT=str(port), WEB_CONCURRENCY="1",
               SSM_ADMIN_TOKEN=ADMIN_TOKEN, SSM_SCRYPT_LOG2_N="4")
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "wsgi:app", "-c",
                             "shared/gunicorn_conf.py"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if _call("GET", url + "/readyz", timeout=1)[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(proc.stderr.read().decode())
    yield url
    proc.terminate()
    proc.wait(10)


def test_long_polls_do_not_starve_other_requests(web):
    _, created = _call("POST", web + "/v1/servers", {"name": "poller"}, ADMIN_TOKEN)
    key, wait = created["key"], 4
    done: list[float] = []

    def poll():
        _call("GET", web + f"/v1/messages?wait={wait}", token=key)
        done.append(time.monotonic())

    polls = [threading.Thread(target=poll) for _ in range(40)]
    for t in polls:
        t.start()
    time.sleep(0.5)  # all 40 polls are now parked in the single worker
    status, body = _call("GET", web + "/v1/status")
    answered = time.monotonic()
    assert status == 200 and body == {"servers": []}
    for t in polls:
        t.join()
    assert len(done) == 40
    assert answered < min(done), "the quick request waited behind the long-polls"


def test_http_error_shapes_over_real_http(web):
    req = urllib.request.Request(web + "/v1/players", method="POST", data=b"{bad",
                                 headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=5)
    except urllib.error.HTTPError as err:
        assert err.code == 400
        assert json.loads(err.read())["error"]["code"] == "invalid_input"
    else:
        pytest.fail("expected 400")


# (a non-integer WEB_CONCURRENCY is refused by gunicorn itself, before it reads this file)
@pytest.mark.parametrize(("name", "value"), [("PORT", "http"), ("WEB_CONCURRENCY", "0"),
                                             ("WEB_WORKER_CONNECTIONS", "0")])
def test_bad_web_setting_exits_naming_it(name, value):
    env = dict(os.environ, REDIS_URL="redis://127.0.0.1:1/0", **{name: value})
    proc = subprocess.run([sys.executable, "-m", "gunicorn", "wsgi:app", "-c",
                           "shared/gunicorn_conf.py"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert f"ssm web: configuration error: {name} must be" in proc.stderr
    assert "Traceback" not in proc.stderr
