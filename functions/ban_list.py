from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.registry import ADMIN, SERVER, operation
from shared.schema import PLAYER_NAME, Bool, Int, Str
from shared.storage import bans


@operation("ban.list", "GET", "/v1/bans", auth=ADMIN | SERVER, aliases=("BANS",),
           fields=(Str("player", where="query", required=False, pattern=PLAYER_NAME),
                   Bool("active", where="query", required=False, default=False,
                        doc="1: only the bans in force; default: all, lifted and expired too"),
                   Str("cursor", where="query", required=False, pattern=r"[0-9]{1,19}",
                       doc="next_cursor of the previous page"),
                   Int("limit", where="query", required=False, default=50, lo=1, hi=200)),
           example={"request": {"player": "alice"},
                    "response": {"bans": [{"id": "b7n2q4x8r1zc", "player": "alice",
                                           "ip": None, "reason": "wallhack",
                                           "scope": "global", "by": "admin",
                                           "at": 1717000000, "expires_at": 1717086400,
                                           "active": True, "lifted_at": None,
                                           "lifted_by": None}],
                                 "next_cursor": None}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """The history of bans, newest first, lifted and expired ones included.

    The admin sees every ban; a game server sees the global bans and its own. ``player`` keeps
    the bans naming that player; ``active=1`` keeps the bans in force. Each ban also says
    whether it is ``active``, and when and by whom it was lifted. A page may hold fewer than
    ``limit`` bans when most do not match: follow ``next_cursor`` until it is null.

    Internals:
    One script pages through an index from the cursor and looks at ``limit`` bans at most,
    never more (README "Abuse budgets"): every ban (the admin), the bans of ``global`` and of the
    calling server merged (a server), the bans not lifted (``active=1``; expired ones leave it when
    the
    worker prunes them), or the player's bans (filtered by scope and state).
    """
    server = ctx.caller.id if ctx.caller.kind == "server" else None
    history, lists = bans.lists_for(args.get("player"), server, args["active"])
    scopes = ("global", server) if server else ()
    found, cursor = bans.page(ctx.redis, history, lists, args.get("cursor"), args["limit"],
                              scopes, args["active"], ctx.now())
    return {"bans": found, "next_cursor": cursor}
