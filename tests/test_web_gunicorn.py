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

from shared.redis_conn import primaries
from tests.conftest import ADMIN_TOKEN, wait_for
from tests.helpers import call as _call
from tests.helpers import gunicorn

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def web(redis_server, r):
    with gunicorn(redis_server.url) as url:
        yield url


@pytest.fixture
def web_uncapped(redis_server, r):
    """Long-polls per server not capped: one key holds them all."""
    with gunicorn(redis_server.url, LONGPOLL_PER_SERVER_MAX="0") as url:
        yield url


def blocked_clients(r) -> int:
    """Connections blocked in a command (XREAD BLOCK here) on every primary."""
    return sum("b" in c["flags"] for node in primaries(r) for c in node.client_list())


def test_long_polls_do_not_starve_other_requests(web_uncapped, r):
    web = web_uncapped
    _, created = _call("POST", web + "/v1/servers", {"name": "poller"}, ADMIN_TOKEN)
    key, wait = created["key"], 4
    done: list[float] = []

    def poll():
        _call("GET", web + f"/v1/messages?wait={wait}", token=key)
        done.append(time.monotonic())

    # more than redis-py's default pool (100 connections), each poll holding one
    polls = [threading.Thread(target=poll) for _ in range(150)]
    for t in polls:
        t.start()
    # all 150 polls parked in the single worker, each blocked in Redis
    wait_for(lambda: blocked_clients(r) == 150, 10, "150 long-polls blocked in Redis")
    status, body = _call("GET", web + "/v1/status")
    answered = time.monotonic()
    assert status == 200 and body == {"servers": []}
    for t in polls:
        t.join()
    assert len(done) == 150
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
