from __future__ import annotations

from typing import Any

from functions.mail_block import SENDER
from shared.dispatch import Ctx
from shared.registry import PLAYER, operation
from shared.schema import PLAYER_PATH_NAME
from shared.storage import mail


@operation("mail.unblock", "DELETE", "/v1/players/{name}/blocked/{sender}", auth=PLAYER,
           owner="name", fields=(PLAYER_PATH_NAME, SENDER),
           example={"request": {"name": "alice", "sender": "bob"}, "response": None})
def handler(ctx: Ctx, args: dict[str, Any]) -> None:
    """Unblock a sender: their mail is accepted again.

    Answers 204 also when the sender was not blocked, so repeating the call is harmless.
    """
    mail.unblock(ctx.redis, args["name"].lower(), args["sender"])
