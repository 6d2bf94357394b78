from __future__ import annotations

from typing import Any

from shared import messages
from shared.registry import SERVER, operation
from shared.schema import Int, Str

CURSOR = r"[0-9]{1,19}(-[0-9]{1,19})?"


@operation("message.read", "GET", "/v1/messages", auth=SERVER, aliases=("MESSAGES",),
           fields=(Str("cursor", where="query", required=False, default="0", pattern=CURSOR,
                       doc="id of the last message seen; absent or 0 = from the oldest kept"),
                   Int("wait", where="query", required=False, default=0, lo=0, hi=30,
                       doc="seconds to wait for a message when none is pending"),
                   Int("limit", where="query", required=False, default=100, lo=1, hi=1000)))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Read the caller's inbox in order: messages, mail notices and server_offline events.

    Returns ``{messages: [{id, from, to, type, body, at}], cursor}``; entries written by workers
    come as stored (``type`` "mail" or "server_offline"). ``cursor`` is the id of the last
    entry returned, or the cursor given when none (pass it back to continue). With ``wait``
    (capped at LONGPOLL_MAX_SECONDS) and nothing pending, answers as soon as something arrives
    or with an empty list when the wait runs out. Messages older than the retention may be gone.
    One round trip (XREAD [BLOCK]). Raises invalid_input naming ``cursor`` for a malformed one.
    """
    wait = min(args["wait"], ctx.config.longpoll_max)
    got = messages.read(ctx.redis, ctx.caller.id, args["cursor"], args["limit"],
                        block_ms=wait * 1000 or None)
    items = [messages.entry(stream_id, fields) for stream_id, fields in got]
    return {"messages": items, "cursor": items[-1]["id"] if items else args["cursor"]}
