from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.errors import TooManyBlocked
from shared.registry import PLAYER, operation
from shared.schema import PLAYER_NAME, PLAYER_PATH_NAME, Str
from shared.storage import mail

SENDER = Str("sender", where="path", pattern=PLAYER_NAME,
             doc="the sender's player name (case-insensitive)")


@operation("mail.block", "PUT", "/v1/players/{name}/blocked/{sender}", auth=PLAYER,
           owner="name", fields=(PLAYER_PATH_NAME, SENDER),
           example={"request": {"name": "alice", "sender": "bob"},
                    "response": {"sender": "bob", "blocked": True}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Block a sender: their mail to the calling player is refused.

    Mail from a blocked sender answers 403 ``blocked``, whether they send it themselves or a game
    server sends it for them. Blocking a name blocked already changes nothing; the name need not
    be registered (yet). A player blocks at most MAIL_BLOCKED_MAX (1,000) senders. Mail already
    received stays.

    Errors:
    - ``too_many_blocked`` (409): the list holds MAIL_BLOCKED_MAX senders and this one is new.

    Internals:
    One script on the player's group checks the list's size and adds the name to it.
    """
    cap = ctx.config.mail_blocked_max
    if not mail.block(ctx.redis, args["name"].lower(), args["sender"], cap):
        raise TooManyBlocked(f"at most {cap} blocked senders; unblock one first")
    return {"sender": args["sender"], "blocked": True}
