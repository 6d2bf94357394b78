from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.registry import PLAYER, operation


def reads(pipe: Any, args: dict[str, Any], lname: str) -> None:
    pipe.zcard(keys.mailbox_unread(lname))


@operation("mail.unread_count", "GET", "/v1/mail/unread", auth=PLAYER, aliases=("UNREAD",),
           prefetch=reads,
           example={"request": {}, "response": {"unread": 1}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """How many of the calling player's mails are unread.

    Internals:
    The count (ZCARD) travels with the credential check: one round trip in all.
    """
    (unread,) = ctx.fetch(reads, args)
    return {"unread": unread}
