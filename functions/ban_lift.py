from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.errors import Forbidden, NotFound
from shared.registry import ADMIN, SERVER, operation
from shared.schema import Str
from shared.storage import bans, limits

BAN_ID = r"[a-z0-9]{12}"


@operation("ban.lift", "DELETE", "/v1/bans/{id}", auth=ADMIN | SERVER, aliases=("UNBAN",),
           audit="id",
           fields=(Str("id", where="path", pattern=BAN_ID),
                   Str("reason", where="query", required=False, max_len=200,
                       doc="why the ban is lifted (audit log, unban notice)")),
           example={"request": {"id": "b7n2q4x8r1zc", "reason": "appeal accepted"},
                    "response": None})
def handler(ctx: Ctx, args: dict[str, Any]) -> None:
    """Lift a ban: it stops applying at once and stays in the history.

    The admin lifts any ban; a game server lifts the bans of its own scope only. Every
    registered server in the ban's scope gets an ``unban`` entry in its inbox (pushed live by
    the relay as event ``unban`` with the ban as ``data``), and webhooks subscribed to
    ``ban.lifted`` get the ban with who lifted it, when and why. Lifting a lifted ban changes
    nothing and sends nothing. The lift is in the audit log. Answers 204.

    Errors:
    - ``not_found`` (404): no ban has this id.
    - ``forbidden`` (403): a server lifting a ban that is not of its own scope.
    - ``rate_limited`` (429): a server key made MOD_WRITES_PER_SERVER_MINUTE moderation writes
      this minute; retry after ``Retry-After``.

    Internals:
    One ``{bans}`` script marks the ban lifted, drops its index entries and adds an outbox entry
    and the ``ban.lifted`` event; then the same later steps as ``ban.create`` (the player's copy
    becomes a tombstone).
    """
    caller, now = ctx.caller, ctx.now()
    only = caller.id if caller.kind == "server" else ""
    by = "admin" if caller.kind == "admin" else caller.id
    budget = ctx.config.mod_writes_per_server_minute if only else 0
    done, ban = bans.lift(ctx.redis, args["id"], by, only, now, args.get("reason") or "",
                          budget)
    if done == -3:
        limits.judge(budget + 1, budget, 60, now, limits.MODERATION)
    if done == -1:
        raise NotFound(f"no ban with id {args['id']}")
    if done == -2:
        raise Forbidden("a server may lift the bans of its own scope only")
    if done == 1 and ban is not None:
        bans.announce(ctx.redis, ctx.config, "unban", ban, now,
                      bans.lift_body(ban, args.get("reason")))
    return None
