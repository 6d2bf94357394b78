from __future__ import annotations

from typing import Any

from shared import keys
from shared.registry import PLAYER, operation


@operation("mail.unread_count", "GET", "/v1/mail/unread", auth=PLAYER, aliases=("UNREAD",))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """How many of the caller's mails are unread: ``{unread: n}``. One round trip (ZCARD)."""
    return {"unread": ctx.redis.zcard(keys.mailbox_unread(ctx.caller.lname))}
