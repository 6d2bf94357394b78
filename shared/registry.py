"""The one registry of operations. HTTP routes, relay commands, HELP and OpenAPI come from it.

An operation is declared next to its handler in ``functions/<name>.py``::

    @operation("mail.send", "POST", "/v1/mail", auth=PLAYER | SERVER, status=201,
               fields=(Str("to", pattern=PLAYER_NAME), ...), aliases=("MAIL",),
               example={"request": {"to": "bob", ...}, "response": {"id": "..."}})
    def handler(ctx, args):
        '''One summary line, plain text (relay HELP shows it as is).

        What callers need to know, in their words: ``code`` for names and values.

        Errors:
        - ``not_found`` (404): no player has the name ``to``.
        '''
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.schema import Field

if TYPE_CHECKING:  # annotations only (dispatch imports this module)
    from shared.dispatch import Ctx

# an operation's handler: handler(ctx, args) -> its answer
Handler = Callable[["Ctx", dict[str, Any]], Any]

# Who may call: a set of caller kinds. ANYONE also admits anonymous callers.
ANYONE = frozenset({"anonymous", "player", "server", "admin"})
PLAYER = frozenset({"player"})
SERVER = frozenset({"server"})
ADMIN = frozenset({"admin"})


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str  # OpenAPI style: /v1/players/{name}
    handler: Handler
    fields: tuple[Field, ...]
    auth: frozenset[str]
    owner: str | None  # path field that must name the caller (player name or server id)
    status: int
    summary: str
    description: str
    aliases: tuple[str, ...]
    idempotent: bool  # honours Idempotency-Key
    reads: bool  # a read (GET); used by docs and benchmarks
    account: tuple[str, ...] = ()  # account fields of a player caller, read with the session
    # reads only: prefetch(pipe, args, who) queues them; HTTP sends them with the credential
    # check (one round trip for both); a handler gets the results from ctx.fetch
    prefetch: Callable[[Any, dict[str, Any], str], None] | None = None
    # answer fields holding a secret the operation issues (a key, a token): shown in the first
    # answer only, never stored for an Idempotency-Key replay (a replay omits them)
    secret_out: tuple[str, ...] = ()
    # an admin or moderation action: after each successful call, shared.dispatch.run appends
    # {op, by, target, reason, at} to the audit log; ``audit`` names the target fields (from
    # the arguments, else the answer), ``audit_by`` the caller kinds whose calls are recorded
    audit: tuple[str, ...] = ()
    audit_by: frozenset[str] = frozenset()
    # False: a repeated Idempotency-Key (same request) runs the handler again instead of
    # answering the stored answer, so every check (a ban, the session) is judged now; for
    # operations whose repeat changes nothing by nature (presence.join)
    replay: bool = True
    # for the docs: {"request": {field: value}, "response": body or None, "status"?: int};
    # not compared, so an Operation stays hashable
    example: Mapping[str, Any] | None = field(default=None, compare=False)


REGISTRY: dict[str, Operation] = {}


def operation(name: str, method: str, path: str, *, auth: frozenset[str] = ANYONE,
              owner: str | None = None, fields: tuple[Field, ...] = (), status: int | None = None,
              aliases: tuple[str, ...] = (), idempotent: bool | None = None,
              account: tuple[str, ...] = (),
              prefetch: Callable[[Any, dict[str, Any], str], None] | None = None,
              secret_out: tuple[str, ...] = (),
              audit: str | tuple[str, ...] = (), audit_by: frozenset[str] = ANYONE,
              example: Mapping[str, Any] | None = None, replay: bool = True
              ) -> Callable[[Handler], Handler]:
    """Register the decorated handler as operation ``name``.

    ``audit`` makes every successful call an audit log entry whose target is the named
    field(s) (``audit="id"``); ``audit_by`` limits that to some kinds of caller (player.delete:
    the admin's only). A secret field can never be an audit target.

    ``example`` shows one call in the docs: ``request`` holds every argument (path, query and
    body fields by name, as the validator takes them), ``response`` the body answered (None for
    no content), ``status`` the code when it is not the operation's usual one.
    """

    def register(handler: Handler) -> Handler:
        if name in REGISTRY:
            raise ValueError(f"operation {name} registered twice")
        targets = (audit,) if isinstance(audit, str) else tuple(audit)
        secret = {f.name for f in fields if f.secret} | set(secret_out)
        if secret & set(targets):
            raise ValueError(f"operation {name}: a secret field cannot be an audit target")
        doc = (handler.__doc__ or name).strip()
        summary, _, description = doc.partition("\n")
        REGISTRY[name] = Operation(
            name=name, method=method, path=path, handler=handler, fields=fields, auth=auth,
            owner=owner, status=status or (204 if method == "DELETE" else 200),
            summary=summary.strip(),
            description=description.strip(), aliases=tuple(a.upper() for a in aliases),
            idempotent=(method == "POST") if idempotent is None else idempotent,
            reads=method == "GET", account=account, prefetch=prefetch, secret_out=secret_out,
            audit=targets, audit_by=audit_by if targets else frozenset(), example=example,
            replay=replay)
        return handler

    return register


def load() -> dict[str, Operation]:
    """Import every module of ``functions`` (each registers itself) and return the registry."""
    import functions

    for mod in pkgutil.iter_modules(functions.__path__):
        importlib.import_module(f"functions.{mod.name}")
    return REGISTRY
