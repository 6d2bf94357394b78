from __future__ import annotations

from typing import Any

from shared import keys, messages
from shared.registry import SERVER, operation
from shared.schema import Int, Str

CURSOR = r"[0-9]{1,19}(-[0-9]{1,19})?"


def reads(pipe: Any, args: dict[str, Any], server_id: str) -> None:
    pipe.xread({keys.inbox(server_id): args["cursor"]}, count=args["limit"])


@operation("message.read", "GET", "/v1/messages", auth=SERVER, aliases=("MESSAGES",),
           prefetch=reads,
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
    What is pending travels with the credential check (one round trip in all); only an empty
    inbox with ``wait`` blocks in a second one, holding one of the caller's
    LONGPOLL_PER_SERVER_MAX long-poll slots (two more round trips). Raises invalid_input naming
    a malformed ``cursor``, rate_limited when the caller already holds every long-poll slot.
    """
    (pending,) = ctx.fetch(reads, args)
    got = pending[0][1] if pending else []
    wait = min(args["wait"], ctx.config.longpoll_max)
    if not got and wait:
        with messages.long_poll(ctx.redis, ctx.config, ctx.caller.id, wait):
            got = messages.read(ctx.redis, ctx.caller.id, args["cursor"], args["limit"],
                                block_ms=wait * 1000)
    items = [messages.entry(stream_id, fields) for stream_id, fields in got]
    return {"messages": items, "cursor": items[-1]["id"] if items else args["cursor"]}
