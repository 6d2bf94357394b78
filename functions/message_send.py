from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.errors import InvalidInput
from shared.registry import SERVER, operation
from shared.schema import CHANNEL, SERVER_ID, TEXT, Str
from shared.storage import messages

TYPE = r"[a-z0-9_.:-]{1,32}"


@operation("message.send", "POST", "/v1/messages", auth=SERVER, status=202, aliases=("SEND",),
           fields=(Str("to", pattern=rf"\*|#{CHANNEL}|{SERVER_ID}",
                       doc="a server id, * (every other server) or #channel"),
                   Str("body", max_len="message_body_max", pattern=TEXT, rest=True,
                       doc="text; tab and line breaks allowed, other control characters not"),
                   Str("type", required=False, default="text", pattern=TYPE,
                       doc="reserved for the backend: mail, server_offline, ban, unban and "
                           "any type starting with system")),
           example={"request": {"to": "#lobby", "body": "gg, rematch at 21:00?", "type": "chat"},
                    "response": {"id": "1717000123456-0"}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Send a message to another server, to every server (*) or to a channel (#name).

    The message reaches each target's inbox, where ``message.read`` (or a relay connection) picks it
    up. ``*`` reaches every other registered server, ``#channel`` every other member of the channel
    (names are not case-sensitive); a server may message itself by id. A broadcast or channel with
    no one to reach still answers 202. ``type`` labels the message for your own protocol (default
    ``text``); the backend's own types are reserved. Each send costs its recipients (at least one;
    a body over 1 KiB costs one more per started KiB) out of the sender's budget of
    MESSAGE_SEND_BUDGET a minute. Returns the message ``id``.

    Errors:
    - ``invalid_input`` (400): a reserved ``type``.
    - ``not_found`` (404): no server has the id in ``to``.
    - ``rate_limited`` (429): the send budget is short; retry after ``Retry-After``.

    Internals:
    One script pays the budget, then appends ``{from, to, type, body, at}`` to every target inbox
    under one stream id; nothing is written when the budget is short.
    """
    kind = args["type"]
    if kind in messages.RESERVED_TYPES or kind.startswith(messages.RESERVED_PREFIX):
        raise InvalidInput("type", f"{kind} is reserved for messages the backend sends")
    to = args["to"].lower() if args["to"].startswith("#") else args["to"]
    data = {"from": ctx.caller.id, "to": to, "type": kind, "body": args["body"],
            "at": ctx.now_ms() / 1000}
    stream_id, _ = messages.deliver(ctx.redis, ctx.config, to, ctx.caller.id, "message", data,
                                    budget=True)
    return {"id": stream_id}
