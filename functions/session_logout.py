from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.redis_conn import Ordered
from shared.registry import PLAYER, operation
from shared.storage import revocations


@operation("session.logout", "DELETE", "/v1/sessions/current", auth=PLAYER,
           aliases=("LOGOUT",),
           example={"request": {}, "response": None})
def handler(ctx: Ctx, args: dict[str, Any]) -> None:
    """Log out: the token that made this call stops working at once.

    The player's other sessions stay valid. Answers 204 with no body.

    Internals:
    Deletes the session key and its entry in the player's session index, then one entry in the
    revocations stream ends the relay connections that used the token (one MULTI/EXEC on one
    Redis, two steps on a cluster).
    """
    lname, token_hash = ctx.caller.lname, ctx.caller.session
    steps = Ordered(ctx.redis)
    steps.pipe.delete(keys.player_session(lname, token_hash))
    steps.pipe.zrem(keys.player_sessions(lname), token_hash)
    revocations.announce(steps.then().pipe, revocations.PLAYER, lname, "logout")
    steps.execute()
