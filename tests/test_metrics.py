"""Prometheus metrics (docs/OPERATIONS.md): scraped from each process after real traffic.

The web app in-process (one registry) and under real gunicorn with two workers (multiprocess
files, summed); a real relay process (pushes, fan-out lag, connections by mode, commands); a
real worker process (jobs done, retried, failed per queue, sweeps, queue lengths). Every
``/metrics`` behind METRICS_TOKEN; each metrics port off with 0.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue, Retry

from shared import metrics
from shared.queues import MAIL_QUEUE, STATUS_QUEUE
from shared.redis_conn import connect
from stack.embedded import free_port
from tests import conftest
from tests.conftest import ADMIN_TOKEN, make_config
from tests.helpers import get, spawn_relay, spawn_worker, stop
from tests.relay_client import authed, greeted, server_creds

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-token-4242"


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def val(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(url: str, token: str | None = TOKEN) -> dict:
    status, _, body = get(url, {"Authorization": f"Bearer {token}"} if token else None)
    assert status == 200, body
    return parse(body.decode())


def wait_for(check: Any, timeout: float = 15.0, what: str = "") -> Any:
    return conftest.wait_for(check, timeout, what, every=0.1)


def listening_ports(pid: int) -> set[int]:
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return {c.laddr.port for p in procs for c in p.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN}


# --- the web app, in-process ------------------------------------------------------------------
@pytest.fixture
def mclient(redis_server, r, clock):
    from wsgi import create_app

    app = create_app(make_config(redis_server.url, metrics_token=TOKEN), r, clock=clock)
    return app.test_client()


def web_scrape(client, token: str | None = TOKEN) -> dict:
    resp = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.data
    return parse(resp.get_data(as_text=True))


def test_web_counts_requests_per_operation_and_status(mclient):
    before = web_scrape(mclient)
    for _ in range(5):
        assert mclient.get("/readyz").status_code == 200
    for _ in range(3):
        assert mclient.get("/v1/status").status_code == 200
    for _ in range(2):
        assert mclient.get("/v1/players/nobody").status_code == 404
    assert mclient.post("/v1/servers", json={"name": "x"}).status_code == 401
    assert mclient.get("/no/such/path").status_code == 404
    after = web_scrape(mclient)

    def moved(name: str, **labels: str) -> float:
        return val(after, name, **labels) - val(before, name, **labels)

    total = "ssm_http_requests_total"
    assert moved(total, operation="readyz", status="200") == 5
    assert moved(total, operation="status.list", status="200") == 3
    assert moved(total, operation="player.get", status="404") == 2
    assert moved(total, operation="server.create", status="401") == 1
    assert moved(total, operation="other", status="404") == 1
    assert moved("ssm_http_request_duration_seconds_count",
                 operation="status.list", status="200") == 3
    assert moved("ssm_http_request_duration_seconds_bucket",
                 operation="status.list", status="200", le="+Inf") == 3
    assert moved("ssm_http_request_duration_seconds_sum",
                 operation="status.list", status="200") > 0
    # labels are operation names and status codes only: no path, player name or token
    labels = {v for (_, ls) in after for _, v in ls}
    assert "nobody" not in labels and not any("/" in v for v in labels)


def test_web_metrics_need_the_token(mclient):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        resp = mclient.get("/metrics", headers=headers)
        assert resp.status_code == 401
        assert resp.json["error"]["code"] == "unauthenticated"
    assert mclient.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code \
        == 200


def test_web_metrics_open_without_token_and_off_with_switch(redis_server, r, clock):
    from wsgi import create_app

    open_app = create_app(make_config(redis_server.url), r, clock=clock).test_client()
    assert open_app.get("/metrics").status_code == 200
    off = create_app(make_config(redis_server.url, web_metrics=0), r, clock=clock).test_client()
    assert off.get("/metrics").status_code == 404
    assert "X-Request-Id" in off.get("/readyz").headers


def test_redis_errors_are_counted(redis_server, clock):
    from wsgi import create_app

    dead = connect(f"redis://127.0.0.1:{free_port()}/0")
    client = create_app(make_config(redis_server.url), dead, clock=clock).test_client()
    before = web_scrape(client, None)
    assert client.get("/readyz").status_code == 503
    assert client.get("/v1/status").status_code == 503
    after = web_scrape(client, None)
    name = "ssm_redis_errors_total"
    assert val(after, name, error="ConnectionError") - val(before, name,
                                                            error="ConnectionError") == 2


def test_longpolls_in_progress(mclient, api):
    _, headers = api.server("poller")
    gauge = "ssm_http_longpolls_in_progress"
    base = val(web_scrape(mclient), gauge)
    polls = [threading.Thread(target=lambda: mclient.application.test_client().get(
        "/v1/messages?wait=2", headers=headers)) for _ in range(3)]
    for t in polls:
        t.start()
    wait_for(lambda: val(web_scrape(mclient), gauge) == base + 3, 5, "3 long-polls")
    for t in polls:
        t.join()
    assert val(web_scrape(mclient), gauge) == base


def test_request_id_on_every_response(mclient):
    for resp in (mclient.get("/readyz"), mclient.get("/nope"),
                 mclient.post("/v1/players", data=b"{bad")):
        rid = resp.headers["X-Request-Id"]
        assert len(rid) == 16 and int(rid, 16) >= 0
    assert mclient.get("/readyz").headers["X-Request-Id"] != \
        mclient.get("/readyz").headers["X-Request-Id"]
    kept = mclient.get("/readyz", headers={"X-Request-Id": "lb-7f3a.9:x"})
    assert kept.headers["X-Request-Id"] == "lb-7f3a.9:x"
    for bad in ("x" * 65, "a b", "a\tb", "ä", ""):
        got = mclient.get("/nope", headers={"X-Request-Id": bad}).headers["X-Request-Id"]
        assert got != bad and len(got) == 16


# --- the web process: real gunicorn, two workers ---------------------------------------------
@pytest.fixture(params=["made", "given"])
def gunicorn2(request, redis_server, r, tmp_path):
    """gunicorn with two workers; PROMETHEUS_MULTIPROC_DIR made by gunicorn_conf, or given."""
    port = free_port()
    env = dict(os.environ, REDIS_URL=redis_server.url, PORT=str(port), WEB_CONCURRENCY="2",
               SSM_ADMIN_TOKEN=ADMIN_TOKEN, SSM_SCRYPT_LOG2_N="4", METRICS_TOKEN=TOKEN)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if request.param == "given":
        given = tmp_path / "prom"
        given.mkdir()
        (given / "counter_1.db").write_bytes(b"stale")  # emptied at start
        env["PROMETHEUS_MULTIPROC_DIR"] = str(given)
    log = open(tmp_path / "web.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "wsgi:app", "-c",
                             "shared/gunicorn_conf.py"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(url + "/readyz"), 20, "gunicorn")
        workers = psutil.Process(proc.pid).children()
        assert len(workers) == 2
        where = str(given) if request.param == "given" else tempfile.gettempdir() + "/ssm-web-*"

        def gauge_files() -> list[str]:  # each worker makes its live-gauge file as it boots
            return [f for w in workers
                    for f in glob.glob(os.path.join(where, f"gauge_livesum_{w.pid}.db"))]

        files = wait_for(lambda: len(gauge_files()) == 2 and gauge_files(), 20, "2 workers")
        assert len({os.path.dirname(f) for f in files}) == 1, files
        mdir = Path(files[0]).parent
        if request.param == "given":
            assert mdir == given and not (given / "counter_1.db").exists()
        yield url, mdir
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
    assert mdir.exists() == (request.param == "given")  # a dir it made is removed at exit


def _up(url: str) -> bool:
    try:
        return get(url, timeout=1)[0] == 200
    except OSError:
        return False


def _per_worker(mdir: Path, operation: str) -> dict[str, float]:
    """Each worker's own count of ``operation`` (one counter file per process)."""
    from prometheus_client.multiprocess import MultiProcessCollector

    out = {}
    for f in mdir.glob("counter_*.db"):
        for family in MultiProcessCollector.merge([str(f)]):
            for s in family.samples:
                if s.name == "ssm_http_requests_total" and s.labels["operation"] == operation:
                    out[f.name] = out.get(f.name, 0) + s.value
    return out


def test_two_gunicorn_workers_are_summed(gunicorn2):
    url, mdir = gunicorn2
    sent = 0

    def burst() -> None:
        nonlocal sent
        errors = []

        def one() -> None:
            status, _, _ = get(url + "/v1/status")
            if status != 200:
                errors.append(status)

        threads = [threading.Thread(target=one) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        sent += len(threads)

    while len(_per_worker(mdir, "status.list")) < 2 and sent < 2000:
        burst()  # until both workers have answered some
    per_worker = _per_worker(mdir, "status.list")
    assert len(per_worker) == 2 and all(v > 0 for v in per_worker.values()), per_worker
    got = scrape(url + "/metrics")
    assert val(got, "ssm_http_requests_total", operation="status.list", status="200") == sent
    assert val(got, "ssm_http_request_duration_seconds_count", operation="status.list",
               status="200") == sent
    assert get(url + "/metrics")[0] == 401


# --- the relay process -------------------------------------------------------------------------
def test_relay_metrics_after_real_pushes(redis_server, r, api, client, tmp_path):
    mport = free_port()
    proc, port = spawn_relay(redis_server.url, tmp_path, RELAY_METRICS_PORT=str(mport),
                             METRICS_TOKEN=TOKEN)
    murl = f"http://127.0.0.1:{mport}/metrics"
    try:
        wait_for(lambda: _up_token(murl), 10, "relay metrics")
        assert get(murl)[0] == 401
        assert get(murl, {"Authorization": "Bearer nope"})[0] == 401
        before = scrape(murl)
        sid, key, _ = server_creds(api, "pushed")
        other_id, other_headers = api.server("sender")
        srv = authed(port, sid, key)
        human = greeted(port, "HUMAN")
        for i in range(3):
            resp = client.post("/v1/messages", json={"to": sid, "body": f"m{i}"},
                               headers=other_headers)
            assert resp.status_code == 202, resp.json
            assert srv.push()["data"]["body"] == f"m{i}"
        after = scrape(murl)

        def moved(name: str, **labels: str) -> float:
            return val(after, name, **labels) - val(before, name, **labels)

        assert moved("ssm_relay_pushes_total") == 3
        assert moved("ssm_relay_fanout_lag_seconds_count") == 3
        assert moved("ssm_relay_fanout_lag_seconds_bucket", le="60.0") == 3
        assert moved("ssm_relay_commands_total", command="MODE") == 2
        assert moved("ssm_relay_commands_total", command="AUTH") == 1
        assert val(after, "ssm_relay_connections", mode="server") == 1
        assert val(after, "ssm_relay_connections", mode="human") == 1
        assert val(after, "ssm_relay_outbound_bytes") == 0
        srv.cmd("SEND", f"{other_id} hi")
        srv.cmd("HW", "1")
        srv.cmd("NOPE")
        later = scrape(murl)
        assert val(later, "ssm_relay_commands_total", command="message.send") \
            - val(after, "ssm_relay_commands_total", command="message.send") == 1
        assert val(later, "ssm_relay_commands_total", command="unknown") \
            - val(after, "ssm_relay_commands_total", command="unknown") == 1
        srv.close()
        human.close()
        wait_for(lambda: val(scrape(murl), "ssm_relay_connections", mode="server") == 0, 5)
    finally:
        proc.terminate()
        proc.wait(10)


def _up_token(url: str) -> bool:
    try:
        return get(url, {"Authorization": f"Bearer {TOKEN}"}, timeout=1)[0] == 200
    except OSError:
        return False


def test_relay_counts_a_slow_client_dropped(start_relay_inproc):
    from relay.server import Connection

    class Stuck:
        aborted = False

        def get_write_buffer_size(self) -> int:
            return start_relay_inproc.config.relay_send_buffer_max

        def abort(self) -> None:
            self.aborted = True

    conn = Connection(start_relay_inproc)
    conn.transport = Stuck()
    before = metrics.relay().dropped._value.get()
    conn.send(b"push\r\n")
    assert conn.transport.aborted and conn.closed
    assert metrics.relay().dropped._value.get() - before == 1


@pytest.fixture
def start_relay_inproc(config):
    from relay.server import Relay

    relay = Relay(config)
    yield relay
    relay.pool.shutdown(wait=False)


def test_relay_metrics_port_zero_opens_nothing(redis_server, r, tmp_path):
    proc, port = spawn_relay(redis_server.url, tmp_path, RELAY_METRICS_PORT="0")
    try:
        time.sleep(0.3)
        assert listening_ports(proc.pid) == {port}
    finally:
        proc.terminate()
        proc.wait(10)


def test_metrics_port_in_use_logs_and_runs_on(redis_server, r, tmp_path):
    import socket

    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))
    taken.listen()
    mport = taken.getsockname()[1]
    proc, port = spawn_relay(redis_server.url, tmp_path, RELAY_METRICS_PORT=str(mport))
    try:
        c = greeted(port, "CLIENT")
        assert c.cmd("HW", "1")["state"] == "OK"
        log = tmp_path / f"relay-{port}.log"
        wait_for(lambda: f"cannot serve metrics on RELAY_METRICS_PORT={mport} "
                 in log.read_text(), 5, "the error line")
    finally:
        taken.close()
        proc.terminate()
        proc.wait(10)


# --- the worker process ------------------------------------------------------------------------
def test_worker_metrics_after_real_jobs(redis_server, r, api, client, tmp_path, queue_url):
    mport = free_port()
    proc = spawn_worker(redis_server.url, tmp_path, WORKER_METRICS_PORT=str(mport),
                        METRICS_TOKEN=TOKEN, STATUS_TTL="1")
    murl = f"http://127.0.0.1:{mport}/metrics"
    try:
        wait_for(lambda: _up_token(murl), 15, "worker metrics")
        server_id, server_headers = api.server("lapses")
        api.heartbeat(server_id, server_headers)  # lapses after STATUS_TTL: the sweep runs
        assert get(murl)[0] == 401
        conn = redis.Redis.from_url(queue_url)  # RQ wants bytes replies
        mail = Queue(MAIL_QUEUE, connection=conn)
        # two jobs that succeed (mail notices), one that fails once then for good
        player = api.player("bob")
        for subject in ("a", "b"):
            resp = client.post("/v1/mail", json={"to": "bob", "subject": subject, "body": "x"},
                               headers=player)
            assert resp.status_code == 201, resp.json
        mail.enqueue_call("shared.jobs.no_such_job", retry=Retry(max=1), result_ttl=0)

        def jobs_seen() -> dict:
            got = scrape(murl)
            counts = {o: val(got, "ssm_worker_jobs_total", queue="mail", outcome=o)
                      for o in ("done", "retried", "failed")}
            return counts if counts == {"done": 2, "retried": 1, "failed": 1} else {}

        wait_for(jobs_seen, 20, "mail jobs counted")
        got = wait_for(lambda: (lambda s: s if val(s, "ssm_worker_sweep_runs_total") >= 1
                                else None)(scrape(murl)), 15, "a sweep")
        assert val(got, "ssm_worker_jobs_total", queue="status", outcome="done") >= 1
        assert val(got, "ssm_worker_job_duration_seconds_count", queue="mail") == 4
        assert ("ssm_worker_queue_length", (("queue", "mail"),)) in got
        assert val(got, "ssm_worker_queue_length", queue="mail") == 0
    finally:
        stop(proc)


def test_worker_queue_lengths_are_read_when_scraped(queue_url, r):
    from prometheus_client import generate_latest

    conn = redis.Redis.from_url(queue_url)
    for _ in range(3):
        Queue(MAIL_QUEUE, connection=conn).enqueue_call("shared.jobs.no_such_job")
    queues = metrics._Queues(conn, (STATUS_QUEUE, MAIL_QUEUE))
    got = parse(generate_latest(metrics._Join(queues)).decode())
    assert val(got, "ssm_worker_queue_length", queue="mail") == 3
    assert val(got, "ssm_worker_queue_length", queue="status") == 0


def test_worker_metrics_port_zero_opens_nothing(redis_server, r, tmp_path):
    proc = spawn_worker(redis_server.url, tmp_path, WORKER_METRICS_PORT="0")
    try:
        # status, mail and WEBHOOK_WORKERS (2) webhooks processes
        wait_for(lambda: len(psutil.Process(proc.pid).children()) == 4, 10, "queue workers")
        wait_for(lambda: (tmp_path / "worker.log").read_text().count(" started (pid ") == 4, 15,
                 "every queue worker started")
        assert listening_ports(proc.pid) == set()
    finally:
        stop(proc)


def test_metrics_wsgi_app_paths():
    app = metrics.wsgi_app(TOKEN, lambda: b"x 1\n")
    seen: list[str] = []

    def call(path: str, auth: str | None = None) -> tuple[str, bytes]:
        environ = {"PATH_INFO": path}
        if auth:
            environ["HTTP_AUTHORIZATION"] = auth
        body = b"".join(app(environ, lambda status, headers: seen.append(status)))
        return seen[-1], body

    assert call("/metrics", f"Bearer {TOKEN}") == ("200 OK", b"x 1\n")
    assert call("/metrics", f"bearer  {TOKEN} ")[0] == "200 OK"
    status, body = call("/metrics", "Bearer x")
    assert status.startswith("401") and json.loads(body)["error"]["code"] == "unauthenticated"
    assert call("/other", f"Bearer {TOKEN}")[0].startswith("404")


def test_dashboard_uses_only_metrics_that_exist():
    import re

    known = {family.name for kind in (metrics.web(), metrics.relay(), metrics.worker())
             for family in kind.registry.collect()}
    known |= {"ssm_relay_connections", "ssm_relay_outbound_bytes", "ssm_worker_queue_length",
              "ssm_worker_queue_scheduled"}  # read at scrape time (scraped in the tests above)
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {re.sub(r"_(bucket|sum|count|total)$", "", m)
            for e in exprs for m in re.findall(r"\b(?:ssm|process)_[a-z_]+", e)}
    assert used and used <= known, used - known
    doc = (ROOT / "docs" / "OPERATIONS.md").read_text()
    assert [m for m in sorted(known) if m.startswith("ssm_") and m not in doc] == []



# --- bind addresses (README "Configuration": the metrics ports bind RELAY_HOST) -------------------
def _refused(url: str) -> bool:
    try:
        get(url, timeout=2)
    except ConnectionRefusedError:
        return True
    except urllib.error.URLError as err:
        return isinstance(err.reason, ConnectionRefusedError)
    return False


def test_relay_metrics_bind_the_relay_host_only(redis_server, r, tmp_path):
    mport = free_port()
    proc, _ = spawn_relay(redis_server.url, tmp_path, RELAY_METRICS_PORT=str(mport))
    try:  # RELAY_HOST=127.0.0.1: another loopback address reaches nothing
        wait_for(lambda: _up(f"http://127.0.0.1:{mport}/metrics"), 10, "relay metrics")
        assert _refused(f"http://127.0.0.2:{mport}/metrics")
    finally:
        proc.terminate()
        proc.wait(10)


def test_worker_metrics_bind_the_relay_host_only(redis_server, r, tmp_path):
    mport = free_port()
    proc = spawn_worker(redis_server.url, tmp_path, WORKER_METRICS_PORT=str(mport),
                        RELAY_HOST="127.0.0.2")
    try:
        wait_for(lambda: _up(f"http://127.0.0.2:{mport}/metrics"), 15, "worker metrics")
        assert _refused(f"http://127.0.0.1:{mport}/metrics")
    finally:
        stop(proc)
