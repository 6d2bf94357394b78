from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.registry import PLAYER, operation
from shared.storage import sessions


@operation("session.list", "GET", "/v1/sessions", auth=PLAYER, aliases=("SESSIONS",),
           prefetch=sessions.list_reads,
           example={"request": {},
                    "response": {"sessions": [{"id": "3f9a0c1d5e7b2a48", "created": 1717000000,
                                               "last_used": 1717003600,
                                               "expires_at": 1719592000, "current": True}]}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """The calling player's live sessions, newest first, this one marked.

    Each session shows when it was created, when it was last used (to the minute, by an HTTP
    call or a page of the players' web; a relay connection marks it when it logs in) and when
    it expires. ``id`` names a session for ``session.end``;
    it is not a credential, and no token is ever shown.

    Internals:
    One script walks the session index (at most SESSIONS_PER_PLAYER_MAX) and reads each
    session; it travels with the credential check: one round trip in all.
    """
    (got,) = ctx.fetch(sessions.list_reads, args)
    return {"sessions": sessions.render(got, ctx.caller.session, ctx.config.session_ttl)}
