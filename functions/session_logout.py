from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.registry import PLAYER, operation
from shared.storage import revocations


@operation("session.logout", "DELETE", "/v1/sessions/current", auth=PLAYER,
           aliases=("LOGOUT",),
           example={"request": {}, "response": None})
def handler(ctx: Ctx, args: dict[str, Any]) -> None:
    """Log out: the token that made this call stops working at once.

    The player's other sessions stay valid. Answers 204 with no body.

    Internals:
    Deletes the session key and its entry in the player's session index (one MULTI/EXEC),
    then one entry in the revocations stream ends the relay connections that used the token.
    """
    lname, token_hash = ctx.caller.lname, ctx.caller.session
    tx = ctx.redis.pipeline()
    tx.delete(keys.player_session(lname, token_hash))
    tx.zrem(keys.player_sessions(lname), token_hash)
    tx.execute()
    revocations.announce(ctx.redis, revocations.PLAYER, lname, "logout")
