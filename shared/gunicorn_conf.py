"""gunicorn settings for the Procfile's ``web`` process.

Worker class: gevent. ``GET /v1/messages?wait=`` long-polls for up to 30 s; with sync workers a
quick request waited ~20 s behind 20 polls, with gthread 1.7 s, with gevent 0 s (FIELD-NOTES).
Password hashing (CPU-bound scrypt) runs in gevent's thread pool, so it never stalls the hub.
"""

import os
import sys

from shared import logs, metrics
from shared.config import Config, ConfigError


def _config() -> Config:
    """PORT and WEB_* read through Config: a bad value exits naming the variable."""
    try:
        return Config.from_env()
    except ConfigError as err:
        print(f"ssm web: configuration error: {err}", file=sys.stderr)
        sys.exit(2)


_web = _config()
bind = f"0.0.0.0:{_web.port}"
worker_class = "gevent"
workers = _web.web_concurrency
worker_connections = _web.web_worker_connections
timeout = 60  # longer than the longest long-poll (30 s)
graceful_timeout = 10
keepalive = 30
control_socket_disable = True
accesslog = None  # WEB_ACCESS_LOG=1: the app logs each request itself (shared/metrics.py)
errorlog = "-"
logger_class = logs.gunicorn_logger(os.environ)  # LOG_FORMAT / LOG_LEVEL (shared/logs.py)


def on_starting(server):  # gunicorn hook signature
    """Check the configuration once, in the master, and exit with a readable message."""
    config = _config()
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
