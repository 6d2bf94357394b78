"""The Redis connection: one pool per process, passed explicitly to whoever needs it."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Sequence
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import NoScriptError
from redis.retry import Retry

# Long-polls block up to 30 s; the socket timeout must outlast them.
SOCKET_TIMEOUT = 45


def connect(url: str, **kw: Any) -> redis.Redis:
    """A client for ``url`` that decodes to str and retries a dropped connection briefly."""
    opts: dict[str, Any] = dict(
        decode_responses=True, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=5,
        socket_keepalive=True, health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError])
    opts.update(kw)
    return redis.Redis.from_url(url, **opts)


class Lua:
    """A Lua script sent by SHA (one round trip), loaded on first use."""

    def __init__(self, source: str):
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, r: Any, keys: Sequence[str] = (), args: Sequence[Any] = ()) -> Any:
        try:
            return r.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return r.eval(self.source, len(keys), *keys, *args)


# --- round-trip accounting (tests/test_roundtrips.py, bench/roundtrips.py) ------------------
# A round trip is one request/response exchange with Redis. redis-py sends every exchange through
# ``Connection.send_packed_command`` exactly once (a plain command once; a whole pipeline or
# MULTI/EXEC block, packed together, once), so a connection class that counts those calls counts
# round trips. The connection handshake (HELLO, CLIENT SETINFO) is not counted; health-check
# PINGs are switched off.
class Counter:
    def __init__(self) -> None:
        self.n = 0


class CountingConnection(redis.Connection):
    """A redis-py connection that counts round trips in its class-level ``counter``."""

    counter = Counter()

    def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        self._ssm_handshake = True
        try:
            super().connect_check_health(*args, **kwargs)
        finally:
            self._ssm_handshake = False

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not getattr(self, "_ssm_handshake", False):
            type(self).counter.n += 1
        super().send_packed_command(command, check_health)


def counting_client(url: str) -> tuple[Any, Counter]:
    """A client like the app's (decode_responses, retries) whose round trips are counted."""
    counter = Counter()
    cls = type("Counting", (CountingConnection,), {"counter": counter})
    return connect(url, connection_class=cls, health_check_interval=0), counter


def preload_scripts(r: Any) -> int:
    """``SCRIPT LOAD`` every Lua script the loaded modules define; returns how many."""
    scripts = {obj.source for obj in gc.get_objects() if isinstance(obj, Lua)}
    for source in scripts:
        r.script_load(source)
    return len(scripts)
