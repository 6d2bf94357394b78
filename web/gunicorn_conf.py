"""gunicorn settings for the Procfile's ``web`` process (read through ``shared/gunicorn_conf.py``).

Worker class: gevent, through ``web.webworker.Worker``. ``GET /v1/messages?wait=`` long-polls
for up to 30 s; with sync workers a quick request waited ~20 s behind 20 polls, with gthread
1.7 s, with gevent 0 s (FIELD-NOTES). Password hashing (CPU-bound scrypt) runs in gevent's
thread pool, so it never stalls the hub. The worker adds the connection limits (header deadline,
connections per address, bounded body drain, JSON errors): docs/DESIGN.md, "Connection limits".
"""

import os
import sys

from shared import logs, metrics
from shared.config import Config, ConfigError

try:
    _config = Config.from_env()
except ConfigError as _err:
    print(f"ssm web: configuration error: {_err}", file=sys.stderr)
    sys.exit(2)

# WEB_HOST: the bind address (an IPv6 one in brackets)
bind = (f"[{_config.web_host}]" if ":" in _config.web_host else _config.web_host) \
    + f":{_config.port}"
worker_class = "web.webworker.Worker"
workers = _config.web_concurrency
# Idle greenlets are cheap; a connection slot held by a slow or idle client must not be
# scarce, or a few thousand of them stop the API (FIELD-NOTES). The header deadline frees them.
worker_connections = _config.web_worker_connections
backlog = 4096
timeout = 60  # longer than the longest long-poll (30 s)
graceful_timeout = 10
keepalive = _config.web_header_timeout  # the worker bounds idle time and head reads with it
control_socket_disable = True
accesslog = None  # WEB_ACCESS_LOG=1: the app logs each request itself (shared/metrics.py)
errorlog = "-"
logger_class = logs.gunicorn_logger(os.environ)  # LOG_FORMAT / LOG_LEVEL (shared/logs.py)


def on_starting(server):  # gunicorn hook signature
    """Check the configuration once, in the master, and exit with a readable message."""
    config = _config
    try:
        config.require_redis()
    except ConfigError as err:
        print(f"ssm web: configuration error: {err}", file=sys.stderr)
        sys.exit(2)
    metrics.gunicorn_master(config)  # one PROMETHEUS_MULTIPROC_DIR for all workers


def child_exit(server, worker):
    metrics.gunicorn_child_exit(worker.pid)


def on_exit(server):
    metrics.gunicorn_exit()
