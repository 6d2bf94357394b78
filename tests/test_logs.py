"""Logs (docs/OPERATIONS.md): LOG_FORMAT=json gives one JSON object per line in every process;
request
lines (WEB_ACCESS_LOG=1) carry operation, status, duration, caller kind and the request id that
the response's X-Request-Id header also has."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared import logs
from shared.config import Config, ConfigError
from shared.redis_conn import connect
from stack.embedded import free_port
from tests.conftest import ADMIN_TOKEN, make_config, wait_for
from tests.helpers import get, spawn_relay, spawn_worker, stop
from tests.relay_client import greeted

ROOT = Path(__file__).resolve().parent.parent
REQUEST_FIELDS = {"time", "level", "logger", "process", "message", "request_id", "method",
                  "operation", "status", "duration_ms", "caller"}


def json_lines(path: Path) -> list[dict]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    assert lines
    return [json.loads(line) for line in lines]  # every line, or this fails


def test_gunicorn_json_request_lines(redis_server, r, tmp_path):
    port = free_port()
    env = dict(os.environ, REDIS_URL=redis_server.url, PORT=str(port), WEB_CONCURRENCY="1",
               SSM_ADMIN_TOKEN=ADMIN_TOKEN, SSM_SCRYPT_LOG2_N="4", LOG_FORMAT="json",
               WEB_ACCESS_LOG="1")
    log = tmp_path / "web.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "wsgi:app", "-c",
                                 "shared/gunicorn_conf.py"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url + "/healthz"), 20, "gunicorn")
        status, headers, _ = get(url + "/v1/players/nobody", {"X-Request-Id": "trace-42"})
        assert status == 404 and headers["X-Request-Id"] == "trace-42"
        status, headers, _ = get(url + "/v1/status/nope")
        assert status == 404
        rid_404 = headers["X-Request-Id"]
        status, headers, _ = get(url + "/v1/status",
                                 {"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert status == 200
        rid_ok = headers["X-Request-Id"]
    finally:
        proc.terminate()
        proc.wait(10)
    records = json_lines(log)
    assert any(rec["logger"] == "gunicorn.error" for rec in records)  # gunicorn's own, too
    assert not any(rec["logger"] == "gunicorn.access" for rec in records)  # ours replace it
    requests = {rec["request_id"]: rec for rec in records if rec["logger"] == "ssm.request"}
    assert set(requests) >= {"trace-42", rid_404, rid_ok}
    for rec in requests.values():
        assert REQUEST_FIELDS <= set(rec), rec
        assert rec["process"] == "web" and rec["level"] == "INFO"
        assert isinstance(rec["duration_ms"], int | float) and rec["duration_ms"] >= 0
    assert (requests[rid_404]["operation"], requests[rid_404]["status"],
            requests[rid_404]["caller"]) == ("status.get", 404, "anonymous")
    assert (requests[rid_ok]["operation"], requests[rid_ok]["status"],
            requests[rid_ok]["caller"], requests[rid_ok]["method"]) == \
        ("status.list", 200, "admin", "GET")


def _answers(url: str) -> bool:
    try:
        return get(url, timeout=1)[0] == 200
    except OSError:
        return False


def test_relay_logs_json(redis_server, r, tmp_path):
    proc, port = spawn_relay(redis_server.url, tmp_path, LOG_FORMAT="json")
    greeted(port).close()  # answered: the relay is past installing its SIGTERM handler
    stop(proc)
    records = json_lines(tmp_path / f"relay-{port}.log")
    assert {f"relay listening on 127.0.0.1:{port}", "relay stopping"} <= \
        {rec["message"] for rec in records}
    assert all(rec["process"] == "relay" for rec in records)


def test_worker_logs_json(redis_server, r, tmp_path):
    # --verbose: RQ's own lines too, to show they come out as JSON as well
    proc = spawn_worker(redis_server.url, tmp_path, "--verbose", LOG_FORMAT="json",
                        LOG_LEVEL="info")
    log = tmp_path / "worker.log"
    wait_for(lambda: log.read_text().count("Listening on") >= 2, 15, "both queue workers")
    stop(proc)
    records = json_lines(log)
    assert any(rec["logger"].startswith("rq.") for rec in records)
    assert all(rec["process"] == "worker" for rec in records)


def capture(config: Config, process: str = "web") -> tuple[io.StringIO, logging.Handler]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.formatter(config.log_format, process))
    handler.addFilter(logs._RequestId())
    return out, handler


@pytest.fixture
def root_handler():
    added: list[logging.Handler] = []
    root = logging.getLogger()
    level = root.level

    def add(handler: logging.Handler) -> None:
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        added.append(handler)

    yield add
    for handler in added:
        root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_request_line_in_process(redis_server, r, clock, root_handler, fmt):
    from wsgi import create_app

    config = make_config(redis_server.url, web_access_log=1, log_format=fmt)
    out, handler = capture(config)
    root_handler(handler)
    client = create_app(config, r, clock=clock).test_client()
    resp = client.get("/v1/status", headers={"X-Request-Id": "abc-1"})
    assert resp.headers["X-Request-Id"] == "abc-1"
    (line,) = [ln for ln in out.getvalue().splitlines() if "abc-1" in ln]
    if fmt == "json":
        rec = json.loads(line)
        assert {k: rec[k] for k in ("operation", "status", "caller", "request_id")} == \
            {"operation": "status.list", "status": 200, "caller": "anonymous",
             "request_id": "abc-1"}
    else:
        assert " web INFO ssm.request: GET status.list request_id=abc-1 method=GET " \
               "operation=status.list status=200 duration_ms=" in line
        assert line.endswith(" caller=anonymous")


def test_no_request_lines_unless_asked(redis_server, r, clock, root_handler):
    from wsgi import create_app

    config = make_config(redis_server.url)
    out, handler = capture(config)
    root_handler(handler)
    client = create_app(config, r, clock=clock).test_client()
    assert client.get("/v1/status").status_code == 200
    assert "ssm.request" not in out.getvalue()


def test_records_during_a_request_carry_its_id(redis_server, clock, root_handler):
    from wsgi import create_app

    config = make_config(redis_server.url, log_format="json")
    out, handler = capture(config)
    root_handler(handler)
    dead = connect(f"redis://127.0.0.1:{free_port()}/0")
    client = create_app(config, dead, clock=clock).test_client()
    resp = client.get("/readyz", headers={"X-Request-Id": "down-1"})
    assert resp.status_code == 503
    warned = [json.loads(ln) for ln in out.getvalue().splitlines()]
    assert [(w["message"], w["request_id"]) for w in warned] == \
        [("redis unavailable: ConnectionError", "down-1")]


def test_log_settings_are_checked():
    assert Config.from_env({"LOG_FORMAT": "JSON", "LOG_LEVEL": "Debug"}).log_format == "json"
    for env, name in (({"LOG_FORMAT": "xml"}, "LOG_FORMAT"), ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
                      ({"WEB_ACCESS_LOG": "yes"}, "WEB_ACCESS_LOG")):
        with pytest.raises(ConfigError, match=name):
            Config.from_env(env)
