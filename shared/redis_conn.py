"""The Redis connection: one pool per process, passed explicitly to whoever needs it."""

from __future__ import annotations

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


def batch(r: Any, *steps: Any) -> list[Any]:
    """Run ``steps`` in one non-transactional pipeline (one round trip) and return their
    results in order. A step is a ``(Lua, keys, args)`` tuple or a callable that queues one
    command on the pipeline. A script Redis does not hold yet (after a restart) is run again on
    its own, by source, after the others; any other error is raised."""
    pipe = r.pipeline(transaction=False)
    for step in steps:
        if isinstance(step, tuple):
            lua, ks, argv = step  # EVALSHA as a plain command: redis-py's cluster pipeline has
            pipe.execute_command("EVALSHA", lua.sha, len(ks), *ks, *argv)  # no evalsha()
        else:
            step(pipe)
    got = pipe.execute(raise_on_error=False)
    for i, (step, result) in enumerate(zip(steps, got, strict=True)):
        if isinstance(result, NoScriptError) and isinstance(step, tuple):
            got[i] = step[0](r, step[1], step[2])
        elif isinstance(result, Exception):
            raise result
    return got
