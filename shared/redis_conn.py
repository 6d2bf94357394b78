"""The Redis connections: one pool per process, passed explicitly to whoever needs it.

Two roles (docs/CLUSTER.md):

- the **data** client (:func:`connect_data`): every operation's keys; a ``redis.Redis`` on one
  Redis, or a ``redis.cluster.RedisCluster`` with ``REDIS_CLUSTER=1`` (it discovers the other
  nodes from the one ``REDIS_URL`` names and follows MOVED/ASK and failovers);
- the **queue** client (:func:`connect_queue`): a plain Redis at ``REDIS_QUEUE_URL`` (default
  ``REDIS_URL``) for RQ's queues, jobs and the worker's locks. RQ needs bytes replies.

``REDIS_ERRORS`` is what "Redis is unavailable" means to an adapter (503 ``unavailable``): every
redis-py error, including the cluster client's, which are not all ``RedisError`` subclasses.
"""

from __future__ import annotations

import functools
import gc
import hashlib
from collections.abc import Sequence
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.cluster import PipelineStrategy, RedisCluster
from redis.commands import CoreCommands
from redis.exceptions import NoScriptError, RedisClusterException
from redis.retry import Retry

from shared import keys
from shared.config import Config

try:
    import hiredis
except ImportError:  # redis-py's own parser and packer then (requirements.txt lists hiredis)
    hiredis = None  # type: ignore[assignment]

# Long-polls block up to 30 s; the socket timeout must outlast them.
SOCKET_TIMEOUT = 45
# A cluster client gives up on a command after this many tries (each re-reads the slot map):
# short, so a request during a failover answers 503 quickly instead of hanging.
CLUSTER_RETRIES = 3

# RedisClusterException (slot not covered, no reachable node, ...) is not a RedisError; the
# server's CLUSTERDOWN, TRYAGAIN, MOVED and READONLY replies are ResponseErrors (RedisError).
REDIS_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, RedisClusterException)
# an adapter's "Redis or its network failed": REDIS_ERRORS and OSError
REDIS_OR_OS_ERRORS: tuple[type[Exception], ...] = (*REDIS_ERRORS, OSError)


class ReplicasBehind(redis.RedisError):
    """Fewer replicas than SSM_WAIT_REPLICAS acknowledged a write within SSM_WAIT_TIMEOUT_MS."""


def _options(**kw: Any) -> dict[str, Any]:
    opts: dict[str, Any] = dict(
        decode_responses=True, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=5,
        socket_keepalive=True, health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError])
    opts.update(kw)
    return opts


def connect(url: str, **kw: Any) -> redis.Redis:
    """A client for one Redis at ``url`` that decodes to str and retries a dropped connection
    briefly."""
    return redis.Redis.from_url(url, **_options(**kw))


def connect_cluster(url: str, **kw: Any) -> RedisCluster:
    """A decoding cluster client that starts from the node at ``url``."""
    opts = _options(**kw)
    opts.pop("retry_on_error")
    opts["retry"] = Retry(ExponentialBackoff(cap=0.5, base=0.05), CLUSTER_RETRIES)
    return RedisCluster.from_url(url, **opts)


def connect_data(config: Config, **kw: Any) -> Any:
    """The data client: a RedisCluster with REDIS_CLUSTER=1, else one Redis."""
    url = config.require_redis()
    return connect_cluster(url, **kw) if config.redis_cluster else connect(url, **kw)


def connect_queue(config: Config, **kw: Any) -> redis.Redis:
    """The queue client (RQ, the worker's locks): bytes replies, as RQ needs."""
    opts: dict[str, Any] = dict(socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=5,
                                socket_keepalive=True, health_check_interval=30)
    opts.update(kw)
    return redis.Redis.from_url(config.queue_url, **opts)


def queue_for(config: Config, data: Any) -> Any:
    """The queue client a web or relay process enqueues with: the data client itself on a
    single Redis that also holds the queues (so a job can join a data MULTI), else its own."""
    if not config.redis_cluster and config.redis_queue_url in (None, "", config.redis_url):
        return data
    return connect_queue(config)


def is_cluster(r: Any) -> bool:
    cls: Any = type(r)
    return _cluster_type(cls)


@functools.cache
def _cluster_type(cls: type) -> bool:
    """RedisCluster derives from a typing Protocol: an isinstance() against it walks typing's
    checks (some microseconds; a page asks several times), so the answer is kept per class."""
    return issubclass(cls, RedisCluster)


def primaries(r: Any) -> list[redis.Redis]:
    """One plain client per primary (a cluster's masters, or ``r`` itself): for whatever must
    visit every node (scans, flushes in tests, script loads)."""
    if is_cluster(r):
        return [r.get_redis_connection(node) for node in r.get_primaries()]
    return [r]


def scan_keys(r: Any, match: str = "*") -> list[str]:
    """Every key matching ``match`` on every primary (``KEYS`` for tests and tools, cluster-safe;
    SCAN, so no primary blocks)."""
    found: list[Any] = []
    for node in primaries(r):
        found += node.scan_iter(match=match, count=1000)
    return sorted(k.decode() if isinstance(k, bytes) else k for k in found)


# --- SSM_WAIT_REPLICAS ----------------------------------------------------------------------
def wait_replicas(r: Any, replicas: int, timeout_ms: int) -> None:
    """Return once ``replicas`` replicas of every primary hold every write acknowledged to this
    process so far, else raise :class:`ReplicasBehind` (503: the caller retries).

    ``WAIT`` counts the writes of the connection it is sent on, and an operation's writes went
    through whichever pooled connections (and scripts, which cannot call WAIT). So each primary
    gets one small write of its own (``keys.wait_mark``) followed by ``WAIT`` on the same
    connection, in one pipeline: a primary's replication stream is ordered, so a replica that
    acknowledged the mark holds every earlier write of that primary. One round trip per
    primary, sent together (a cluster pipeline), only when SSM_WAIT_REPLICAS > 0."""
    pipe = r.pipeline(transaction=False)
    if is_cluster(r):
        nodes = r.get_primaries()
        for node in nodes:
            pipe.set(keys.wait_mark(_tag_on(r, node.name)), 1, px=60000)
            pipe.execute_command("WAIT", replicas, timeout_ms, target_nodes=node)
    else:
        nodes = [None]
        pipe.set(keys.wait_mark("0"), 1, px=60000)
        pipe.execute_command("WAIT", replicas, timeout_ms)
    acked = pipe.execute()[1::2]
    behind = [n for n, a in zip(nodes, acked, strict=True) if int(a) < replicas]
    if behind:
        raise ReplicasBehind(f"{len(behind)} primary(ies) had fewer than {replicas} replica(s) "
                             f"acknowledge within {timeout_ms} ms")


_TAGS: dict[str, str] = {}  # primary name -> a tag it served when last looked up


def _tag_on(r: RedisCluster, node_name: str) -> str:
    """A hash tag whose slot the primary ``node_name`` serves in ``r``'s current slot map."""
    slots = r.nodes_manager.slots_cache

    def serves(tag: str) -> bool:
        owners = slots.get(r.keyslot(keys.wait_mark(tag)))
        return bool(owners and owners[0].name == node_name)

    tag = _TAGS.get(node_name)
    if tag is not None and serves(tag):
        return tag
    for i in range(100000):
        if serves(str(i)):
            _TAGS[node_name] = str(i)
            return str(i)
    raise RedisClusterException(f"no slot of {node_name} found")


class Lua:
    """A Lua script sent by SHA, loaded on first use; one idiom for a client and a pipeline.

    ``script(r, keys, args)`` runs it now (one round trip; ``EVAL`` once if the node lacks it).
    ``script(r, keys, args, pipeline=pipe)`` queues it on ``pipe`` instead (a plain or cluster
    pipeline, a MULTI or not) and returns ``pipe``; its reply comes with ``pipe.execute()``.
    A cluster pipeline has no ``evalsha``, so the command is queued with ``execute_command``
    (which routes it by its keys). A queued ``EVALSHA`` cannot fall back to ``EVAL`` after a
    ``NOSCRIPT``, so the pipeline form sends the SHA only when :func:`preload_scripts` loaded
    every script on every primary of ``r`` (processes do at start), and the source otherwise;
    a ``NoScriptError`` (a node restarted or promoted without them) makes ``r`` send sources
    again until the next preload (:func:`forget_scripts`, called by the dispatcher).

    Every key a script touches must share one hash tag: keys passed in ``KEYS``, and any key
    the script builds itself from ids it reads (``keys.around``) must be of the same tag as
    its ``KEYS``.
    """

    def __init__(self, source: str):
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, r: Any, keys: Sequence[str] = (), args: Sequence[Any] = (),
                 pipeline: Any = None) -> Any:
        if pipeline is not None:
            if self.sha in getattr(r, "_ssm_scripts", ()):
                command = ("EVALSHA", self.sha, len(keys), *keys, *args)
            else:
                command = ("EVAL", self.source, len(keys), *keys, *args)
            pipeline.execute_command(*command, **route(r, pipeline, command))
            return pipeline
        try:
            return r.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            forget_scripts(r)
            return r.eval(self.source, len(keys), *keys, *args)


def route(r: Any, pipeline: Any, command: tuple[Any, ...],
          options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The node a cluster pipeline is to send ``command`` to, as its ``target_nodes`` option:
    an ``EVAL``/``EVALSHA`` by its first key, a command queued by a redis-py method by the
    ``keys`` it names. redis-py 8.1's cluster pipeline otherwise asks a node for the keys of a
    script or of a command with movable keys (``XREAD``): ``COMMAND GETKEYS``, a round trip per
    command before the pipeline's own. Empty (redis-py decides) on one Redis, in a cluster
    MULTI, for a keyless command and while the slot map lacks the slot (a failover: redis-py
    refreshes it). A ``MOVED`` still re-routes."""
    if not is_cluster(r) or not isinstance(getattr(pipeline, "_execution_strategy", None),
                                            PipelineStrategy):
        return {}
    if command[0] in ("EVAL", "EVALSHA"):
        key = command[3] if int(command[2]) else None
    else:
        key = next(iter((options or {}).get("keys") or ()), None)
    if key is None:
        return {}
    try:
        return {"target_nodes": r.get_node_from_key(key)}
    except RedisClusterException:
        return {}


class Ordered:
    """Steps that must reach Redis in order, each on one hash tag (a check, an index, the
    owning record), sent in as few round trips as that allows: on one Redis every step goes in
    one MULTI/EXEC (in order, and atomic besides: RQ may add a job to it); a cluster pipeline
    sends each node's part on its own, so there :meth:`then` sends what is queued and waits
    for it before the next step is queued. ``pipe`` is the pipeline to queue the current step
    on; :meth:`execute` returns every reply, in order."""

    def __init__(self, r: Any):
        self.r = r
        self.replies: list[Any] = []
        if is_cluster(r):
            self.pipe = r.pipeline(transaction=False)
        else:
            self.pipe = r.pipeline()
            self.pipe.multi()  # explicit, so that RQ adds its commands to it

    def then(self) -> Ordered:
        if is_cluster(self.r):
            self.replies += self.pipe.execute()
            self.pipe = self.r.pipeline(transaction=False)
        return self

    def execute(self) -> list:
        return self.replies + self.pipe.execute()


class Reads(CoreCommands):
    """Read commands sent in one round trip (a page's reads, a credential's check and the
    operation's prefetched reads), their replies shaped by redis-py's reply callbacks as a
    pipeline shapes them (``SMEMBERS`` a set, ``ZSCORE`` a float). Commands queue as on a
    pipeline (``reads.hmget(key, *fields)``, or ``add("HMGET", key, *fields)``); a :class:`Lua`
    script queues itself with ``pipeline=`` a Reads; :meth:`execute` returns the replies in order.

    On one Redis the commands are written on a pooled connection directly: redis-py 8's pipeline
    spends about 0.05 ms of CPU a round trip around the same exchange (its observability hooks,
    HIMPORT bookkeeping, retry wrapper), a sixth of a profile page's CPU (bench/pages.py).
    A dropped connection is tried once more on a fresh one, as the client's ``Retry`` would
    (reads only, so resending is safe); every reply is read before the first error reply is
    raised, so the connection stays in step. On a cluster it is a non-transactional pipeline,
    which routes each command to its slot's node."""

    _event_dispatcher: Any = None  # CoreCommands' hook for client-side caching: not used here

    def __init__(self, r: Any):
        self.r = r
        self.commands: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    @property
    def _ssm_scripts(self) -> frozenset[str]:  # a script queued with this as its client
        return getattr(self.r, "_ssm_scripts", frozenset())

    def execute_command(self, *command: Any, **options: Any) -> Reads:
        self.commands.append((command, options))
        return self

    def add(self, *command: Any) -> Reads:
        return self.execute_command(*command)

    def execute(self) -> list[Any]:
        commands, self.commands = self.commands, []
        if not commands:
            return []
        if is_cluster(self.r):
            pipe = self.r.pipeline(transaction=False)
            for command, options in commands:
                pipe.execute_command(*command, **options, **route(self.r, pipe, command, options))
            return pipe.execute()
        pool = self.r.connection_pool
        conn = pool.get_connection()
        try:
            try:
                replies = _exchange(conn, commands)
            except (redis.ConnectionError, redis.TimeoutError):
                conn.disconnect()
                replies = _exchange(conn, commands)
        except BaseException:
            conn.disconnect()  # cut off between replies: never hand it on out of step
            raise
        finally:
            pool.release(conn)
        callbacks = self.r.response_callbacks
        shaped = []
        for (command, options), reply in zip(commands, replies, strict=True):
            if isinstance(reply, redis.ResponseError):
                if EMPTY_RESPONSE not in options:
                    raise reply
                shaped.append(options[EMPTY_RESPONSE])
                continue
            callback = callbacks.get(command[0])
            if callback is None:
                shaped.append(reply)
            else:  # the options redis-py's parse_response keeps for a callback
                shaped.append(callback(reply, **{k: v for k, v in options.items()
                                                 if k not in _NOT_FOR_CALLBACKS}))
        return shaped


_NOT_FOR_CALLBACKS = frozenset({"keys", NEVER_DECODE, EMPTY_RESPONSE})


def _exchange(conn: Any, commands: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> list[Any]:
    """Every command written at once, then every reply read (an error reply as its exception).
    hiredis packs the commands (redis-py's packer looks at every argument once more in Python)."""
    if hiredis is None:
        conn.send_packed_command(conn.pack_commands([command for command, _ in commands]))
    else:
        try:
            packed = b"".join([hiredis.pack_command(command) for command, _ in commands])
        except TypeError as err:
            raise redis.DataError(str(err)) from None
        conn.send_packed_command([packed])
    replies: list[Any] = []
    for _, options in commands:
        try:
            replies.append(conn.read_response(disable_decoding=NEVER_DECODE in options))
        except redis.ResponseError as err:
            replies.append(err)
    return replies


def forget_scripts(r: Any) -> None:
    """A node lacked a script: pipelines on ``r`` send sources until the next preload."""
    if hasattr(r, "_ssm_scripts"):
        r._ssm_scripts = frozenset()


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


def counting_client(url: str, cluster: bool = False) -> tuple[Any, Counter]:
    """A client like the app's (decode_responses, retries; a RedisCluster with ``cluster``)
    whose round trips are counted, from zero once it is built."""
    counter = Counter()
    cls = type("Counting", (CountingConnection,), {"counter": counter})
    make = connect_cluster if cluster else connect
    client = make(url, connection_class=cls, health_check_interval=0)
    counter.n = 0  # a cluster client read the slot map while it was built
    return client, counter


def preload_scripts(r: Any) -> int:
    """``SCRIPT LOAD`` every Lua script the loaded modules define on every primary of ``r``;
    pipelines on ``r`` then queue them by SHA. Returns how many."""
    scripts = {obj.source: obj.sha for obj in gc.get_objects() if isinstance(obj, Lua)}
    for node in primaries(r):
        pipe = node.pipeline(transaction=False)
        for source in scripts:
            pipe.script_load(source)
        pipe.execute()
    r._ssm_scripts = frozenset(scripts.values())
    return len(scripts)


def preload(r: Any) -> None:
    """:func:`preload_scripts` at a process's start, if Redis answers (else pipelines send
    sources until it does: still correct)."""
    try:
        preload_scripts(r)
    except REDIS_ERRORS:
        pass


def batch(r: Any, *steps: Any) -> list[Any]:
    """Run ``steps`` in one non-transactional pipeline (one round trip) and return their
    results in order. A step is a ``(Lua, keys, args)`` tuple or a callable that queues one
    command on the pipeline. A script Redis does not hold yet (after a restart) is run again on
    its own, by source, after the others; any other error is raised."""
    pipe = r.pipeline(transaction=False)
    for step in steps:
        if isinstance(step, tuple):
            lua, ks, argv = step  # EVALSHA as a plain command: redis-py's cluster pipeline has
            command = ("EVALSHA", lua.sha, len(ks), *ks, *argv)  # no evalsha()
            pipe.execute_command(*command, **route(r, pipe, command))
        else:
            step(pipe)
    got = pipe.execute(raise_on_error=False)
    for i, (step, result) in enumerate(zip(steps, got, strict=True)):
        if isinstance(result, NoScriptError) and isinstance(step, tuple):
            got[i] = step[0](r, step[1], step[2])
        elif isinstance(result, Exception):
            raise result
    return got
