"""Prometheus metrics of the three processes (docs/OPERATIONS.md lists them all).

``web()``, ``relay()`` and ``worker()`` build one kind's metrics once per process, each in its
own registry. Labels are operation, command, queue, status or outcome names: a fixed set, never a
path, a token or a player name.

Multiprocess mode: gunicorn's workers, and the worker's two queue processes, each write their
values into files in ``PROMETHEUS_MULTIPROC_DIR``; whoever serves ``/metrics`` adds them up.
prometheus_client decides at import whether to run that way, so it is imported here on first use
only: gunicorn's master (``gunicorn_master``) and the worker's supervisor (``worker_exposition``)
set the directory before any process imports it. Without the variable (the web app built in a
test, the relay) values live in the process.

The relay and the worker serve ``/metrics`` on their own port from a thread (``serve``): a small
WSGI app that checks ``METRICS_TOKEN`` first (prometheus_client's ``start_http_server`` has no
authentication).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import glob
import hmac
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler

from shared.config import Config

log = logging.getLogger("ssm.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# seconds; a long-poll lasts up to LONGPOLL_MAX_SECONDS (30)
LATENCY_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0, 10.0, 60.0)
JOB_BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
JOB_OUTCOMES = {None: "done", "finished": "done", "failed": "failed", "stopped": "failed",
                "canceled": "failed", "queued": "retried", "scheduled": "retried"}


# --- the metrics of each process kind ---------------------------------------------------------
class Web:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("ssm_http_requests", "HTTP requests answered",
                                ["operation", "status"], registry=self.registry)
        self.latency = Histogram("ssm_http_request_duration_seconds",
                                 "HTTP request time, from routing to the response",
                                 ["operation", "status"], buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self.redis_errors = Counter("ssm_redis_errors", "requests answered 503 for a Redis error",
                                    ["error"], registry=self.registry)
        self.longpolls = Gauge("ssm_http_longpolls_in_progress",
                               "GET /v1/messages?wait= blocked waiting for a message",
                               multiprocess_mode="livesum", registry=self.registry)
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def request(self, operation: str, status: int, seconds: float) -> None:
        pair = self._children.get((operation, status))
        if pair is None:  # labels() once per (operation, status): it takes a lock and hashes
            labels = (operation, str(status))
            pair = self._children[(operation, status)] = (self.requests.labels(*labels),
                                                          self.latency.labels(*labels))
        pair[0].inc()
        pair[1].observe(seconds)


class Relay:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector

        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # memory, open files: one per connection
        self.commands = Counter("ssm_relay_commands", "commands received, by command name "
                                "(an operation's name for its aliases; unknown ones as 'unknown')",
                                ["command"], registry=self.registry)
        self.pushes = Counter("ssm_relay_pushes", "lines pushed unasked (messages, mail "
                              "notices) to connected clients", registry=self.registry)
        self.dropped = Counter("ssm_relay_slow_clients_dropped",
                               "clients dropped because a push found RELAY_SEND_BUFFER_MAX bytes "
                               "waiting",
                               registry=self.registry)
        self.lag = Histogram("ssm_relay_fanout_lag_seconds", "time from an inbox entry's id "
                             "(when Redis stored it) to its push", buckets=LAG_BUCKETS,
                             registry=self.registry)
        self.udp = Counter("ssm_relay_legacy_udp_datagrams", "datagrams on LEGACY_UDP_PORT, "
                           "by answer: pong, sendChecksum, version, unknown, none",
                           ["answer"], registry=self.registry)

    def pushed(self, keys: Iterable[tuple[int, int]], now: float | None = None) -> None:
        """Observe the fan-out lag of stream entries (their ids' millisecond part)."""
        now = time.time() if now is None else now
        for ms, _ in keys:
            self.lag.observe(max(0.0, now - ms / 1000))


class Worker:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.jobs = Counter("ssm_worker_jobs", "jobs run, by queue and outcome (done, failed, "
                            "retried: failed but queued again)", ["queue", "outcome"],
                            registry=self.registry)
        self.duration = Histogram("ssm_worker_job_duration_seconds", "time to run a job",
                                  ["queue"], buckets=JOB_BUCKETS, registry=self.registry)
        self.sweeps = Counter("ssm_worker_sweep_runs", "status sweeps run to the end",
                              registry=self.registry)

    def finished(self, queue: str, job: Any, seconds: float) -> None:
        """Count a job the worker just ran (its horse has exited): its status says how it went.
        Jobs here keep no result (``result_ttl=0``), so a done job's hash is already gone."""
        import redis
        from rq.exceptions import InvalidJobOperation

        try:
            status = job.get_status(refresh=True)
        except InvalidJobOperation:  # the job's hash is gone: done, result discarded
            status = None
        except redis.RedisError as exc:  # Redis away: this one goes uncounted
            log.warning("job outcome unknown (%s)", type(exc).__name__)
            return
        outcome = JOB_OUTCOMES.get(getattr(status, "value", status), "failed")
        self.jobs.labels(queue, outcome).inc()
        self.duration.labels(queue).observe(seconds)
        if outcome == "done" and job.func_name == "shared.jobs.sweep_status":
            self.sweeps.inc()


@functools.cache
def web() -> Web:
    return Web()


@functools.cache
def relay() -> Relay:
    return Relay()


@functools.cache
def worker() -> Worker:
    return Worker()


def longpoll() -> contextlib.AbstractContextManager[Any]:
    """Around a blocking long-poll read: the in-progress gauge counts it."""
    return web().longpolls.track_inprogress()


def counting(worker_class: type) -> type:
    """An RQ worker class that counts each job's outcome in the worker process itself (never in
    the forked horse: a horse would leave a metrics file per job behind)."""

    class Counting(worker_class):
        def execute_job(self, job: Any, queue: Any) -> Any:
            start = time.perf_counter()
            try:
                return super().execute_job(job, queue)
            finally:
                worker().finished(queue.name, job, time.perf_counter() - start)

    Counting.__name__ = Counting.__qualname__ = worker_class.__name__
    return Counting


# --- the web app ------------------------------------------------------------------------------
def instrument(app: Any, config: Config) -> None:
    """Per request: an ``X-Request-Id`` (the caller's when sane, else a new one) on every
    response, errors included; the count and time per operation and status (SSM_METRICS); the
    request line (WEB_ACCESS_LOG); and ``GET /metrics``. The label is the route's endpoint: the
    operation's name, or health, docs, status page, metrics; ``other`` when no route matched."""
    from flask import Response, g, request

    from shared import logs
    from shared.errors import Unauthenticated

    m = web() if config.web_metrics else None
    access = logging.getLogger("ssm.request") if config.web_access_log else None

    @app.before_request
    def begin() -> None:
        g.ssm_start = time.perf_counter()
        g.ssm_request_id = logs.new_request_id(request.headers.get("X-Request-Id"))
        logs.request_id.set(g.ssm_request_id)

    @app.after_request
    def end(resp: Any) -> Any:
        rid = g.get("ssm_request_id") or logs.new_request_id()
        resp.headers["X-Request-Id"] = rid
        seconds = time.perf_counter() - g.get("ssm_start", time.perf_counter())
        operation = request.endpoint or "other"
        if m is not None:
            m.request(operation, resp.status_code, seconds)
        if access is not None:
            access.info("%s %s", request.method, operation, extra={
                "request_id": rid, "method": request.method, "operation": operation,
                "status": resp.status_code, "duration_ms": round(seconds * 1000, 2),
                "caller": g.get("ssm_caller", "anonymous")})
        return resp

    if m is not None:
        @app.get("/metrics")
        def metrics() -> Any:
            if not authorized(config.metrics_token, request.headers.get("Authorization")):
                raise Unauthenticated(UNAUTHORIZED)
            return Response(render(m.registry), content_type=CONTENT_TYPE)


# --- exposition ---------------------------------------------------------------------------------
class _Join:
    """Several collectors seen as one registry (``generate_latest`` only calls ``collect``)."""

    def __init__(self, *parts: Any) -> None:
        self.parts = parts

    def collect(self) -> Iterator[Any]:
        for part in self.parts:
            yield from part.collect()


def render(own: Any, extra: Iterable[Any] = ()) -> bytes:
    """The text exposition: this process's registry ``own`` (or, in multiprocess mode, every
    process's files) plus collectors read at scrape time."""
    from prometheus_client import generate_latest

    path = os.environ.get(MULTIPROC_ENV)
    if path:
        from prometheus_client.multiprocess import MultiProcessCollector

        own = MultiProcessCollector(None, path)
    return generate_latest(_Join(own, *extra))


def authorized(token: str | None, header: str | None) -> bool:
    """No METRICS_TOKEN: open. Else the header must be ``Bearer <METRICS_TOKEN>``."""
    if not token:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode())


def _error(start_response: Callable, status: str, code: str, message: str,
           headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body))), *(headers or [])])
    return [body]


UNAUTHORIZED = "GET /metrics needs 'Authorization: Bearer <METRICS_TOKEN>'"


def wsgi_app(token: str | None, body: Callable[[], bytes]) -> Callable:
    """``GET /metrics`` behind the token; everything else 404."""

    def app(environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            return _error(start_response, "404 Not Found", "not_found", "only /metrics here")
        if not authorized(token, environ.get("HTTP_AUTHORIZATION")):
            return _error(start_response, "401 Unauthorized", "unauthenticated", UNAUTHORIZED,
                          [("WWW-Authenticate", "Bearer")])
        data = body()
        start_response("200 OK", [("Content-Type", CONTENT_TYPE),
                                  ("Content-Length", str(len(data)))])
        return [data]

    return app


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
        pass


def serve(port: int, token: str | None, body: Callable[[], bytes], setting: str,
          host: str = "0.0.0.0") -> Any:
    """Serve ``/metrics`` on ``port`` from a daemon thread; returns the server (``.shutdown()``)
    or None when the port is 0 or taken (logged: the process goes on without metrics)."""
    if not port:
        return None
    from wsgiref.simple_server import make_server

    from prometheus_client.exposition import ThreadingWSGIServer

    try:
        server = make_server(host, port, wsgi_app(token, body), ThreadingWSGIServer,
                             handler_class=_Quiet)
    except OSError as err:
        log.error("cannot serve metrics on %s=%s (%s); running without them (set a free "
                  "port, or 0 for none)", setting, port, err.strerror)
        return None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics on http://%s:%s/metrics", host, port)
    return server


# --- the relay: gauges read from the event loop at scrape time ----------------------------------
def relay_body(loop: Any, gauges: Callable[[], tuple[dict[str, int], int]]) -> Callable[[], bytes]:
    """The relay's exposition: its counters plus connections by mode and bytes queued, read by
    ``gauges`` on the loop thread (the connections belong to it)."""
    from prometheus_client.core import GaugeMetricFamily

    class State:
        def collect(self) -> Iterator[Any]:
            done: concurrent.futures.Future = concurrent.futures.Future()

            def read() -> None:
                try:
                    done.set_result(gauges())
                except Exception as exc:  # reported below, once
                    done.set_exception(exc)

            loop.call_soon_threadsafe(read)
            try:
                modes, queued = done.result(timeout=5)
            except Exception as exc:  # loop stopping or stuck: counters only this time
                log.warning("relay gauges unavailable (%s)", type(exc).__name__)
                return
            conns = GaugeMetricFamily("ssm_relay_connections", "open connections by mode "
                                      "(none: MODE not sent yet)", labels=["mode"])
            for mode in ("none", "server", "client", "human"):
                conns.add_metric([mode], modes.get(mode, 0))
            yield conns
            yield GaugeMetricFamily("ssm_relay_outbound_bytes", "bytes waiting to be written "
                                    "to clients, all connections", value=queued)

    state = State()
    return lambda: render(relay().registry, [state])


# --- the worker: the supervisor serves what its queue processes count ---------------------------
@contextlib.contextmanager
def worker_exposition(config: Config, conn: Any, queues: Iterable[str]) -> Iterator[None]:
    """In the worker's supervisor: a fresh PROMETHEUS_MULTIPROC_DIR for its queue processes
    (inherited through the environment), ``/metrics`` on WORKER_METRICS_PORT with queue lengths
    read from Redis at scrape time; all removed on exit. Port 0: none of it."""
    if not config.worker_metrics_port:
        os.environ.pop(MULTIPROC_ENV, None)  # the children keep their counts to themselves
        yield
        return
    path = tempfile.mkdtemp(prefix="ssm-worker-metrics-")
    os.environ[MULTIPROC_ENV] = path
    server = serve(config.worker_metrics_port, config.metrics_token,
                   lambda: render(None, [_Queues(conn, tuple(queues)), _Webhooks(conn)]),
                   "WORKER_METRICS_PORT", config.relay_host)
    try:
        yield
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        shutil.rmtree(path, ignore_errors=True)


class _Queues:
    """Queue lengths, read from Redis when scraped (one LLEN and one ZCARD per queue)."""

    def __init__(self, conn: Any, queues: tuple[str, ...]) -> None:
        self.conn, self.queues = conn, queues

    def collect(self) -> Iterator[Any]:
        import redis
        from prometheus_client.core import GaugeMetricFamily
        from rq import Queue

        waiting = GaugeMetricFamily("ssm_worker_queue_length", "jobs waiting in the queue",
                                    labels=["queue"])
        later = GaugeMetricFamily("ssm_worker_queue_scheduled", "jobs scheduled for later "
                                  "(retries waiting for their back-off)", labels=["queue"])
        try:
            for name in self.queues:
                queue = Queue(name, connection=self.conn)
                waiting.add_metric([name], queue.count)
                later.add_metric([name], queue.scheduled_job_registry.count)
        except redis.RedisError as exc:
            log.warning("queue lengths unavailable (%s)", type(exc).__name__)
            return
        yield waiting
        yield later


class _Webhooks:
    """Webhook delivery attempts by outcome (delivered, failed: to be retried, dropped), counted
    in Redis by the delivery jobs (so every worker process and host adds to one count) and read
    when scraped: every worker instance shows the same fleet-wide totals."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def collect(self) -> Iterator[Any]:
        import redis
        from prometheus_client.core import CounterMetricFamily

        from shared import keys

        try:
            raw = self.conn.hgetall(keys.webhook_counts())
        except redis.RedisError as exc:
            log.warning("webhook counts unavailable (%s)", type(exc).__name__)
            return
        got = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
        family = CounterMetricFamily("ssm_webhook_deliveries", "webhook delivery attempts by "
                                     "outcome (fleet-wide, from Redis)", labels=["outcome"])
        for outcome in ("delivered", "failed", "dropped"):
            family.add_metric([outcome], got.get(outcome, 0))
        yield family


# --- gunicorn (master process) ------------------------------------------------------------------
_made_dir: list[str] = []


def gunicorn_master(config: Config) -> None:
    """Before any worker starts: use PROMETHEUS_MULTIPROC_DIR if set (emptied of old values),
    else a fresh temporary directory (removed at exit), exported to the workers."""
    if not config.web_metrics:
        os.environ.pop(MULTIPROC_ENV, None)
        return
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        os.makedirs(path, exist_ok=True)
        for stale in glob.glob(os.path.join(path, "*.db")):
            os.remove(stale)
    else:
        path = tempfile.mkdtemp(prefix="ssm-web-metrics-")
        _made_dir.append(path)
        os.environ[MULTIPROC_ENV] = path


def gunicorn_child_exit(pid: int) -> None:
    """A worker exited: its live gauges (long-polls in progress) stop counting."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def gunicorn_exit() -> None:
    for path in _made_dir:
        shutil.rmtree(path, ignore_errors=True)
