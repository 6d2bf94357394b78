from __future__ import annotations

from typing import Any

from shared import messages
from shared.errors import InvalidInput
from shared.registry import SERVER, operation
from shared.schema import CHANNEL, SERVER_ID, TEXT, Str

TYPE = r"[a-z0-9_.:-]{1,32}"


@operation("message.send", "POST", "/v1/messages", auth=SERVER, status=202, aliases=("SEND",),
           fields=(Str("to", pattern=rf"\*|#{CHANNEL}|{SERVER_ID}",
                       doc="a server id, * (every other server) or #channel"),
                   Str("body", max_len="message_body_max", pattern=TEXT, rest=True,
                       doc="text; tab and line breaks allowed, other control characters not"),
                   Str("type", required=False, default="text", pattern=TYPE,
                       doc="reserved for the backend: mail, server_offline, ban, unban and "
                           "any type starting with system")))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Send a message to another server, to every server (``*``) or to a channel (``#name``).

    Appends ``{from, to, type, body, at}`` to each target's inbox in one script (one round
    trip), every copy under the same stream id. ``*`` reaches every registered server but the
    sender, ``#channel`` every member but the sender (channel names are case-insensitive); a
    server may message itself by id. A broadcast or channel with no one to reach still answers
    202. Each send pays its recipients (at least one) out of the sender's budget of
    MESSAGE_SEND_BUDGET a minute (a body over 1 KiB costs one more per started KiB) before
    anything is written. Returns ``{id}`` (the stream id). Raises invalid_input (400) for a
    reserved ``type``, not_found (404) for an unknown server id, rate_limited (429, with
    Retry-After) when the budget is short.
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
