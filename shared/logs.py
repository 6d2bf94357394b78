"""Logging of the three processes (docs/OPERATIONS.md): readable text or one JSON object per line.

``setup_logging(config, process)`` is called once by each entry point (gunicorn's workers through
``wsgi.app``, ``python -m relay``, ``python -m shared.worker``); gunicorn's own logger gets the
same formatter through ``gunicorn_logger``. ``LOG_FORMAT=json`` uses python-json-logger: a
plain ``logging.Formatter``, so RQ's, gunicorn's and our loggers all come out the same without
changing a call site (structlog would want its own logger API at each call, or a bridge).

Records logged while an HTTP request is handled carry its ``request_id`` (a context variable,
one per greenlet under gevent). Extra fields (``operation``, ``status``, ...) are JSON keys in
JSON mode and ``key=value`` pairs after the message in text mode. Nothing here formats a secret:
call sites log names of things, never tokens, keys or passwords (tests/test_secrets.py).
"""

from __future__ import annotations

import logging
import logging.config
import re
import secrets
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from shared.config import Config, ConfigError

request_id: ContextVar[str | None] = ContextVar("ssm_request_id", default=None)

# Extra fields shown after the message in text mode, in this order.
FIELDS = ("request_id", "method", "operation", "status", "duration_ms", "caller")
TEXT_FORMAT = "%(asctime)s {process} %(levelname)s %(name)s: %(message)s"
INCOMING_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,64}")


def new_request_id(incoming: str | None = None) -> str:
    """The caller's ``X-Request-Id`` when it is sane (1-64 chars of ``[A-Za-z0-9._:+/=-]``),
    else a fresh random one (16 hex digits)."""
    if incoming and INCOMING_ID.fullmatch(incoming):
        return incoming
    return secrets.token_hex(8)


class _RequestId(logging.Filter):
    """Adds the current request's id to every record logged while it is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            rid = request_id.get()
            if rid is not None:
                record.request_id = rid
        return True


class TextFormatter(logging.Formatter):
    """The readable format, with the known extra fields appended as ``key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(f"{k}={getattr(record, k)}" for k in FIELDS
                         if getattr(record, k, None) is not None)
        if not extra:
            return line
        head, nl, rest = line.partition("\n")  # keep a traceback below the fields
        return f"{head} {extra}{nl}{rest}"


def formatter(log_format: str, process: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter("%(levelname)s %(name)s %(message)s", timestamp="time",
                             rename_fields={"levelname": "level", "name": "logger"},
                             static_fields={"process": process})
    return TextFormatter(TEXT_FORMAT.format(process=process))


def dict_config(log_format: str, level: str, process: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: the root logger to stderr in the chosen format."""
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
               "formatter": "ssm", "filters": ["request_id"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"ssm": {"()": formatter, "log_format": log_format, "process": process}},
        "filters": {"request_id": {"()": _RequestId}},
        "handlers": {"ssm": handler},
        "root": {"level": level.upper(), "handlers": ["ssm"]},
    }


def setup_logging(config: Config, process: str) -> None:
    """Send every log record of this process to stderr as LOG_FORMAT says, from LOG_LEVEL up."""
    logging.config.dictConfig(dict_config(config.log_format, config.log_level, process))


def gunicorn_logger(environ: Any) -> type:
    """gunicorn's ``logger_class``: gunicorn's own setup, then our format and level on its
    handlers (not ``logconfig_dict``: any logging config turns gunicorn's access log on). A
    malformed LOG_FORMAT or LOG_LEVEL falls back to text/info here: the ``on_starting`` check
    then stops gunicorn with a message naming the variable."""
    from gunicorn.glogging import Logger

    try:
        config = Config.from_env(environ)
    except ConfigError:  # reported by on_starting
        config = Config()

    class GunicornLogger(Logger):
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            self.error_log.setLevel(config.log_level.upper())
            for handler in self.error_log.handlers:
                handler.setFormatter(formatter(config.log_format, "web"))
                handler.addFilter(_RequestId())

    return GunicornLogger
