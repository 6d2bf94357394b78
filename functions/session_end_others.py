from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.registry import PLAYER, operation
from shared.storage import sessions


@operation("session.end_others", "DELETE", "/v1/sessions", auth=PLAYER, status=200,
           aliases=("ENDOTHERS",),
           example={"request": {}, "response": {"sessions_ended": 2}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """End every session of the calling player but the one making this call.

    For a player who thinks someone else has their token: every other device is logged out at
    once, relay connections included. Returns how many sessions ended.

    Internals:
    One script in the player's group walks the session index (at most SESSIONS_PER_PLAYER_MAX),
    then an entry in the revocations stream (one MULTI/EXEC on one Redis, two steps on a
    cluster).
    """
    return {"sessions_ended": sessions.end(ctx.redis, ctx.caller.lname, "", ctx.caller.session)}
