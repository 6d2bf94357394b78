from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.registry import PLAYER, operation
from shared.schema import Str
from shared.storage import sessions


@operation("session.end", "DELETE", "/v1/sessions/{id}", auth=PLAYER, aliases=("ENDSESSION",),
           fields=(Str("id", where="path", pattern=sessions.SESSION_ID,
                       doc="a session's id from session.list"),),
           example={"request": {"id": "3f9a0c1d5e7b2a48"}, "response": None})
def handler(ctx: Ctx, args: dict[str, Any]) -> None:
    """End one of the calling player's sessions (a lost phone, a shared computer).

    Its token stops working at once, and relay connections logged in with it are ended. Ending
    the session that makes the call is a logout. Answers 204.

    Errors:
    - ``not_found`` (404): the player has no live session with this id.

    Internals:
    One script in the player's group (the session key and its index entry), then an entry in
    the revocations stream (one MULTI/EXEC on one Redis, two steps on a cluster).
    """
    if not sessions.end(ctx.redis, ctx.caller.lname, args["id"], ctx.caller.session):
        raise NotFound(f"no session {args['id']}")
