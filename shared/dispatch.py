"""The one way an operation is run, whatever the transport: auth rule, validation, idempotency.

HTTP and the relay gather raw arguments and a caller, then call :func:`run`. Handlers see a
:class:`Ctx` and validated args; they return a dict (or None for "no content"), or an
:class:`Outcome` when the status depends on what happened (201 created / 200 existed), or raise
ApiError.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import NoScriptError

from shared import keys
from shared.auth import Caller
from shared.config import Config
from shared.errors import (
    Forbidden,
    IdempotencyKeyReused,
    InvalidInput,
    RequestInProgress,
    Unauthenticated,
)
from shared.redis_conn import Reads, forget_scripts, wait_replicas
from shared.registry import Operation
from shared.schema import validate
from shared.storage import audit

IDEMPOTENCY_KEY_MAX = 64
_PENDING = "pending"
# A request in progress holds its key this long at most: longer than any request may run
# (gunicorn's timeout is 60 s), short enough that a process killed mid-request does not leave
# the key answering "in progress" for a day.
PENDING_TTL = 90


@dataclass
class Ctx:
    """What a handler may use: Redis, config, the clock, the caller and where they came from.

    ``redis`` is the data client (a RedisCluster with REDIS_CLUSTER=1); ``queue`` the client
    to enqueue RQ jobs with (``shared.jobs``): the data client itself on a single Redis, a plain
    Redis apart from the cluster otherwise (``shared.redis_conn.queue_for``)."""

    redis: Any
    config: Config
    caller: Caller
    ip: str = ""
    clock: Callable[[], float] = field(default=time.time)
    prefetched: list | None = None  # results of the operation's prefetch, sent with the auth
    queue: Any = None  # default: ``redis``
    # the game server a player's command came through (a relay command's "as"): login limits
    # then count per (name, server), as for a login the server makes (shared/storage/limits.py)
    via: str = ""

    def __post_init__(self) -> None:
        if self.queue is None:
            self.queue = self.redis

    def fetch(self, reads: Callable[[Any, dict[str, Any], str], None],
              args: dict[str, Any]) -> list:
        """Results of ``reads(pipe, args, who)``: already fetched with the credential check when
        the transport could (HTTP), else fetched now in one round trip."""
        if self.prefetched is not None:
            return self.prefetched
        pipe = Reads(self.redis)
        reads(pipe, args, self.caller.lname if self.caller.kind == "player" else self.caller.id)
        return pipe.execute()

    def now(self) -> float:
        return self.clock()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict | None


def authorize(op: Operation, caller: Caller) -> None:
    """Refuse a caller whose kind the operation does not admit (before validating input)."""
    if caller.kind in op.auth:
        return
    if caller.kind == "anonymous":
        raise Unauthenticated(f"{op.name} needs a bearer token")
    raise Forbidden(f"{op.name} is not allowed for a {caller.kind}")


def check_owner(op: Operation, caller: Caller, args: Mapping[str, Any]) -> None:
    """A player or server may act only on its own resources; the admin on any."""
    if op.owner is None or caller.kind == "admin":
        return
    target = str(args.get(op.owner, ""))
    mine = caller.lname if caller.kind == "player" else caller.id
    if target.lower() != mine.lower():
        raise Forbidden(f"{op.name}: you may act only on your own {op.owner}")


def run(op: Operation, ctx: Ctx, raw: Mapping[str, Any],
        text_fields: frozenset[str] | set[str] = frozenset(),
        idempotency_key: str | None = None) -> Outcome:
    """Authorize, validate and run ``op``; replay the first answer for a repeated key.

    A repeated key answers the first result (its ``secret_out`` fields left out: a secret is
    never stored or replayed); the same key with other arguments is idempotency_key_reused.
    With SSM_WAIT_REPLICAS > 0 a write answers only once that many replicas of every primary
    hold it (``shared.redis_conn.wait_replicas``; else 503 ``unavailable``)."""
    authorize(op, ctx.caller)
    args = validate(op.fields, raw, ctx.config, text_fields)
    check_owner(op, ctx.caller, args)
    try:
        outcome = _run(op, ctx, args, idempotency_key)
    except NoScriptError:
        forget_scripts(ctx.redis)  # a node restarted or was promoted: send sources again
        raise
    if ctx.config.wait_replicas and not op.reads:
        wait_replicas(ctx.redis, ctx.config.wait_replicas, ctx.config.wait_timeout_ms)
    return outcome


def _run(op: Operation, ctx: Ctx, args: dict[str, Any], idempotency_key: str | None) -> Outcome:
    if idempotency_key is None or not op.idempotent:
        return _audited(op, ctx, args, _outcome(op, op.handler(ctx, args)))
    if not 1 <= len(idempotency_key) <= IDEMPOTENCY_KEY_MAX:
        raise InvalidInput("Idempotency-Key", f"must be 1 to {IDEMPOTENCY_KEY_MAX} characters")
    ident = ctx.caller.ident if ctx.caller.kind != "anonymous" else f"ip:{ctx.ip}"
    key = keys.idempotency(ident, op.name, idempotency_key)
    fp, ttl = fingerprint(op, args), ctx.config.idempotency_ttl
    if not ctx.redis.set(key, f"{_PENDING}:{fp}", nx=True, ex=min(ttl, PENDING_TTL)):
        replayed = _replay(op, ctx.redis.get(key), fp)
        if op.replay:
            return replayed
        # the same request again: run it again (its repeat changes nothing), judged now
        return _audited(op, ctx, args, _outcome(op, op.handler(ctx, args)))
    try:
        outcome = _audited(op, ctx, args, _outcome(op, op.handler(ctx, args)))
    except BaseException:
        # An error changed nothing, so the key is released: a retry may succeed later (a 429
        # replayed past its Retry-After, or a 409 server_not_live after a heartbeat, would
        # make "retries are safe" useless). Only answers that changed something are replayed.
        ctx.redis.delete(key)
        raise
    stored = {"status": outcome.status, "body": _without_secrets(op, outcome.body), "fp": fp}
    ctx.redis.set(key, json.dumps(stored), ex=ttl)
    return outcome


def _audited(op: Operation, ctx: Ctx, args: dict[str, Any], outcome: Outcome) -> Outcome:
    """Append the audit entry of a successful admin or moderation action (``op.audit``):
    one round trip, after the action, so only what happened is recorded."""
    if op.audit and ctx.caller.kind in op.audit_by:
        audit.record(ctx.redis, op.name, audit.caller_label(ctx.caller),
                     audit.target_of(op.audit, args, outcome.body),
                     str(args.get("reason") or ""), ctx.now())
    return outcome


def fingerprint(op: Operation, args: Mapping[str, Any]) -> str:
    """sha256 of the validated arguments as canonical JSON (sorted keys, no spaces), so key
    order, spacing and defaults filled in do not matter. Secret inputs (``Field.secret``: a
    password, a token) are left out, so no fast hash of a password is ever stored; a random
    token declared ``fingerprinted`` counts by its sha256 (another player's token is another
    request)."""
    secret = {f.name for f in op.fields if f.secret}
    hashed = {f.name for f in op.fields if f.secret and f.fingerprinted}
    public = {k: v for k, v in args.items() if k not in secret}
    public.update({f"{k}#sha256": hashlib.sha256(str(args[k]).encode()).hexdigest()
                   for k in hashed if k in args})
    text = json.dumps(public, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _outcome(op: Operation, result: dict | Outcome | None) -> Outcome:
    return result if isinstance(result, Outcome) else Outcome(op.status, result)


def _without_secrets(op: Operation, body: dict | None) -> dict | None:
    if body is None or not op.secret_out:
        return body
    return {k: v for k, v in body.items() if k not in op.secret_out}


def _replay(op: Operation, stored: str | None, fp: str) -> Outcome:
    if stored is not None and stored.startswith(_PENDING) and stored != f"{_PENDING}:{fp}":
        raise _reused()
    if stored is None or stored.startswith(_PENDING):
        raise RequestInProgress("a request with this Idempotency-Key is still in progress; "
                                "retry shortly")
    data = json.loads(stored)
    if data.get("fp", fp) != fp:
        raise _reused()
    return Outcome(data["status"], _without_secrets(op, data["body"]))


def _reused() -> IdempotencyKeyReused:
    return IdempotencyKeyReused("this Idempotency-Key was used with a different request; "
                                "use a new key for a new request")
