from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.registry import SERVER, operation
from shared.schema import STREAM_CURSOR, Int, Str
from shared.storage import messages


def reads(pipe: Any, args: dict[str, Any], server_id: str) -> None:
    pipe.xread({keys.inbox(server_id): args["cursor"]}, count=args["limit"])


@operation("message.read", "GET", "/v1/messages", auth=SERVER, aliases=("MESSAGES",),
           prefetch=reads,
           fields=(Str("cursor", where="query", required=False, default="0", pattern=STREAM_CURSOR,
                       doc="id of the last message seen; absent or 0 = from the oldest kept"),
                   Int("wait", where="query", required=False, default=0, lo=0, hi=30,
                       doc="seconds to wait for a message when none is pending"),
                   Int("limit", where="query", required=False, default=100, lo=1, hi=1000)),
           example={"request": {"cursor": "1717000000000-0", "wait": 25},
                    "response": {"messages": [{"id": "1717000123456-0", "from": "t5y1u8i2o6pz",
                                               "to": "#lobby", "type": "chat",
                                               "body": "gg, rematch at 21:00?",
                                               "at": 1717000123.456}],
                                 "cursor": "1717000123456-0"}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Read the calling server's inbox, oldest first.

    The inbox holds messages from other servers and the backend's own notices: ``mail`` (a player
    online here got mail) and ``server_offline`` (a server stopped sending heartbeats). Pass the
    ``cursor`` of the previous answer to get only newer entries; without one, reading starts at the
    oldest entry kept (at least the last MESSAGE_KEEP_COUNT entries or MESSAGE_KEEP_SECONDS
    seconds). With ``wait`` and nothing new, the answer comes as soon as something arrives, or
    with an empty list after ``wait`` seconds (at most LONGPOLL_MAX_SECONDS).

    A server may hold at most LONGPOLL_PER_SERVER_MAX waiting reads at once.

    Errors:
    - ``invalid_input`` (400): a malformed ``cursor``.
    - ``rate_limited`` (429): the caller already holds every long-poll slot; retry after
      ``Retry-After``.

    Internals:
    What is pending travels with the credential check (one round trip in all); only an empty inbox
    with ``wait`` blocks in a second one (XREAD BLOCK), holding one of the caller's long-poll
    slots (two more round trips: take it, give it back).
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
