"""Configuration, parsed and checked once at start.

Every setting comes from the environment. A malformed value, or an unknown variable with the
``SSM_`` prefix, fails at start with a message that names the variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


ADMIN_TOKEN_MIN = 16  # characters (README "Configuration")


_S = TypeVar("_S", bound=str | None)


def _int(name: str, default: int, lo: int = 0, hi: int = 2**31) -> int:
    return field(default=default, metadata={"env": name, "kind": int, "lo": lo, "hi": hi})


def _str(name: str, default: _S, choices: tuple[str, ...] = ()) -> _S:
    return field(default=default, metadata={"env": name, "kind": str, "choices": choices})


@dataclass(frozen=True)
class Config:
    """All settings; field metadata names the environment variable of each."""

    redis_url: str | None = _str("REDIS_URL", None)
    # Redis Cluster (docs/CLUSTER.md): the data on a cluster, RQ on a plain Redis
    redis_cluster: int = _int("REDIS_CLUSTER", 0, 0, 1)
    redis_queue_url: str | None = _str("REDIS_QUEUE_URL", None)
    wait_replicas: int = _int("SSM_WAIT_REPLICAS", 0, 0, 16)
    wait_timeout_ms: int = _int("SSM_WAIT_TIMEOUT_MS", 1000, 1, 60000)
    port: int = _int("PORT", 5000, 1, 65535)
    relay_port: int = _int("RELAY_PORT", 53450, 1, 65535)
    relay_host: str = _str("RELAY_HOST", "0.0.0.0")
    admin_token: str | None = _str("SSM_ADMIN_TOKEN", None)
    status_ttl: int = _int("STATUS_TTL", 90, 1)
    session_ttl: int = _int("SESSION_TTL", 30 * 86400, 60)
    sessions_per_player_max: int = _int("SESSIONS_PER_PLAYER_MAX", 50, 1, 10000)
    scrypt_log2_n: int = _int("SSM_SCRYPT_LOG2_N", 14, 1, 20)
    trusted_proxies: int = _int("SSM_TRUSTED_PROXIES", 0, 0, 10)
    data_dir: str = _str("SSM_DATA_DIR", "data")
    embedded_redis_port: int = _int("SSM_REDIS_PORT", 6390, 1, 65535)
    # limits (docs/API.md)
    message_body_max: int = _int("MESSAGE_BODY_MAX", 1024, 1)
    mail_subject_max: int = _int("MAIL_SUBJECT_MAX", 100, 1)
    mail_body_max: int = _int("MAIL_BODY_MAX", 2000, 1)
    mailbox_max: int = _int("MAILBOX_MAX", 200, 1)
    request_body_max: int = _int("REQUEST_BODY_MAX", 64 * 1024, 1024)
    register_limit_per_ip_hour: int = _int("REGISTER_LIMIT_PER_IP_HOUR", 100, 0)
    settings_value_max: int = _int("SETTINGS_VALUE_MAX", 4096, 2)
    settings_keys_max: int = _int("SETTINGS_KEYS_MAX", 256, 1)
    record_meta_max: int = _int("RECORD_META_MAX", 1024, 4)
    login_name_fails: int = _int("LOGIN_NAME_FAILS", 5, 1)
    login_name_lock: int = _int("LOGIN_NAME_LOCK_SECONDS", 60, 1)
    login_ip_fails: int = _int("LOGIN_IP_FAILS", 10, 1)
    login_ip_lock: int = _int("LOGIN_IP_LOCK_SECONDS", 600, 1)
    login_window: int = _int("LOGIN_FAIL_WINDOW_SECONDS", 600, 1)
    login_fails_per_server_minute: int = _int("LOGIN_FAILS_PER_SERVER_MINUTE", 30, 0)  # 0 = off
    idempotency_ttl: int = _int("IDEMPOTENCY_TTL", 86400, 60)
    message_keep_count: int = _int("MESSAGE_KEEP_COUNT", 10000, 1)
    message_keep_seconds: int = _int("MESSAGE_KEEP_SECONDS", 7 * 86400, 60)
    message_hard_cap: int = _int("MESSAGE_HARD_CAP", 100000, 1)
    longpoll_max: int = _int("LONGPOLL_MAX_SECONDS", 30, 0, 30)
    channels_per_server_max: int = _int("CHANNELS_PER_SERVER_MAX", 64, 1)
    message_send_budget: int = _int("MESSAGE_SEND_BUDGET", 8000, 0)  # recipients/min; 0 = off
    message_send_burst: int = _int("MESSAGE_SEND_BURST", 3000, 1)  # recipients at once
    mail_unread_per_sender_max: int = _int("MAIL_UNREAD_PER_SENDER_MAX", 20, 0)  # 0 = off
    clan_members_max: int = _int("CLAN_MEMBERS_MAX", 100, 2, 10000)  # owner included
    # abuse budgets (README "Abuse budgets"); 0 = off where noted
    mod_writes_per_server_minute: int = _int("MOD_WRITES_PER_SERVER_MINUTE", 30, 0)  # 0 = off
    ban_server_max_seconds: int = _int("BAN_SERVER_MAX_SECONDS", 90 * 86400, 60, 10 * 365 * 86400)
    register_limit_per_server_hour: int = _int("REGISTER_LIMIT_PER_SERVER_HOUR", 100, 0)
    mail_send_per_minute: int = _int("MAIL_SEND_PER_MINUTE", 30, 0)  # 0 = off
    mail_send_per_day: int = _int("MAIL_SEND_PER_DAY", 500, 0)  # 0 = off
    mail_send_per_day_new_account: int = _int("MAIL_SEND_PER_DAY_NEW_ACCOUNT", 50, 0)  # 0 = off
    mail_blocked_max: int = _int("MAIL_BLOCKED_MAX", 1000, 1, 100000)
    webhook_queue_max: int = _int("WEBHOOK_QUEUE_MAX", 10000, 1, 10000000)
    # relay (docs/RELAY.md); 0 = no limit
    relay_max_clients: int = _int("RELAY_MAX_CLIENTS", 10000, 0)
    relay_max_per_ip: int = _int("RELAY_MAX_PER_IP", 64, 0)
    relay_idle_timeout: int = _int("RELAY_IDLE_TIMEOUT", 300, 0)
    relay_threads: int = _int("RELAY_THREADS", 16, 1, 512)
    # relay abuse budgets (README "Abuse budgets")
    relay_handshake_timeout: int = _int("RELAY_HANDSHAKE_TIMEOUT", 10, 0, 3600)  # 0 = off
    relay_connections_per_server: int = _int("RELAY_CONNECTIONS_PER_SERVER", 4, 1, 1000)
    relay_send_buffer_max: int = _int("RELAY_SEND_BUFFER_MAX", 4 * 1024 * 1024, 65536, 2**30)
    # the released (server)² core's UDP verify, served by the relay (docs/RELAY.md); 0 = off
    legacy_udp_port: int = _int("LEGACY_UDP_PORT", 53472, 0, 65535)
    # web process (gunicorn + web/webworker.py); 0 = no limit where noted
    web_concurrency: int = _int("WEB_CONCURRENCY", 2, 1, 256)
    web_worker_connections: int = _int("WEB_WORKER_CONNECTIONS", 10000, 1, 1000000)
    web_header_timeout: int = _int("WEB_HEADER_TIMEOUT", 5, 1, 300)
    web_max_conn_per_ip: int = _int("WEB_MAX_CONN_PER_IP", 512, 0)
    web_redis_connections: int = _int("WEB_REDIS_CONNECTIONS", 2000, 10)
    web_host: str = _str("WEB_HOST", "0.0.0.0")  # the web's bind address (README "Configuration")
    web_body_timeout: int = _int("WEB_BODY_TIMEOUT", 30, 1, 3600)  # one deadline per body
    longpoll_per_server_max: int = _int("LONGPOLL_PER_SERVER_MAX", 4, 0)
    # workers (docs/WORKERS.md)
    sweep_interval: int = _int("STATUS_SWEEP_SECONDS", 5, 1)
    trim_interval: int = _int("MESSAGE_TRIM_SECONDS", 600, 1)
    seasons_kept: int = _int("SEASONS_KEPT", 24, 24, 100000)  # past seasons, besides the current
    # fault injection for the crash tests: read only through shared/faults.py (documented there)
    test_job_pause_ms: int = _int("SSM_TEST_JOB_PAUSE_MS", 0, 0, 60000)  # tests: kill mid-job
    # tests: mail.send ends its process right after storing a mail, before queueing the notice
    test_exit_after_mail_store: int = _int("SSM_TEST_EXIT_AFTER_MAIL_STORE", 0, 0, 1)
    # webhooks (docs/WEBHOOKS.md): delivery by the worker's webhooks queue
    webhook_allow_private: int = _int("WEBHOOK_ALLOW_PRIVATE", 0, 0, 1)
    webhook_timeout: int = _int("WEBHOOK_TIMEOUT_SECONDS", 5, 1, 30)
    webhook_retry_window: int = _int("WEBHOOK_RETRY_WINDOW_SECONDS", 3600, 0, 7 * 86400)
    webhook_workers: int = _int("WEBHOOK_WORKERS", 2, 1, 32)
    # operations (docs/OPERATIONS.md): metrics and logs; a metrics port of 0 = off
    relay_metrics_port: int = _int("RELAY_METRICS_PORT", 9150, 0, 65535)
    worker_metrics_port: int = _int("WORKER_METRICS_PORT", 9151, 0, 65535)
    metrics_token: str | None = _str("METRICS_TOKEN", None)
    web_metrics: int = _int("SSM_METRICS", 1, 0, 1)
    web_access_log: int = _int("WEB_ACCESS_LOG", 0, 0, 1)
    # players' accounts on the web (README "Web pages"): the ssm_session cookie is Secure (HTTPS
    # only)
    web_cookie_secure: int = _int("WEB_COOKIE_SECURE", 0, 0, 1)
    log_format: str = _str("LOG_FORMAT", "text", ("text", "json"))
    log_level: str = _str("LOG_LEVEL", "info", ("debug", "info", "warning", "error"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Config:
        """Read every field from ``environ`` (default ``os.environ``); overrides win."""
        env = os.environ if environ is None else environ
        known = {f.metadata["env"] for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in env if k.startswith("SSM_") and k not in known)
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]}: known SSM_ settings are "
                              + ", ".join(sorted(k for k in known if k.startswith("SSM_"))))
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name, raw = f.metadata["env"], env.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            if f.metadata["kind"] is int:
                values[f.name] = _parse_int(name, raw, f.metadata["lo"], f.metadata["hi"])
            elif f.metadata["choices"]:
                values[f.name] = _parse_choice(name, raw, f.metadata["choices"])
            else:
                values[f.name] = raw
        values.update(overrides)
        token = values.get("admin_token")
        if isinstance(token, str) and len(token) < ADMIN_TOKEN_MIN:
            raise ConfigError(f"SSM_ADMIN_TOKEN must be at least {ADMIN_TOKEN_MIN} characters "
                              f"(got {len(token)}); set a long random value, or unset it to "
                              "refuse all admin calls")
        return cls(**values)

    def require_redis(self) -> str:
        """The Redis URL, or a ConfigError that says what to set."""
        if not self.redis_url:
            raise ConfigError("REDIS_URL is not set: set REDIS_URL (e.g. "
                              "redis://127.0.0.1:6379/0), "
                              "or run everything with `python -m shared.up`, which starts an "
                              "embedded Redis for you")
        if self.redis_cluster and not self.redis_queue_url:
            raise ConfigError("REDIS_CLUSTER=1 needs REDIS_QUEUE_URL: set it to a plain "
                              "(non-cluster) Redis for the RQ queues and the worker's locks "
                              "(RQ does not run on a Redis Cluster)")
        return self.redis_url

    @property
    def queue_url(self) -> str:
        """The Redis of the RQ queues and the worker's locks: REDIS_QUEUE_URL, else REDIS_URL."""
        return self.redis_queue_url or self.require_redis()


def _parse_int(name: str, raw: str, lo: int, hi: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _parse_choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value


def env_table() -> list[tuple[str, object]]:
    """(variable, default) for every setting, for the docs."""
    return [(f.metadata["env"], f.default) for f in dataclasses.fields(Config)]
