from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.registry import PLAYER, operation
from shared.schema import PLAYER_PATH_NAME
from shared.storage import mail


@operation("mail.blocked", "GET", "/v1/players/{name}/blocked", auth=PLAYER, owner="name",
           fields=(PLAYER_PATH_NAME,),
           example={"request": {"name": "alice"}, "response": {"blocked": ["bob"]}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """The senders the calling player blocked.

    Sorted by name; at most MAIL_BLOCKED_MAX (``mail.block``).
    """
    return {"blocked": mail.blocked(ctx.redis, args["name"].lower())}
