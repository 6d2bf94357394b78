"""Webhook events (docs/WEBHOOKS.md): emitted by the change that causes them, into an outbox.

An event is ONE write, an XADD into the outbox stream of the cause's own group
(``keys.outbox(tag)``), made in the same script or MULTI/EXEC as the change itself. So the
event exists exactly when its cause does, the request path pays no extra round trip, and no
script or transaction spans two groups. The worker drains every outbox into one delivery job
per subscribed webhook (``shared.jobs.drain_outbox``); nothing on the request path waits for a
webhook. Event names and data shapes: docs/WEBHOOKS.md.

From Python, inside the cause's transaction (``emit`` only queues the command)::

    tx = ctx.redis.pipeline()                      # MULTI/EXEC
    tx.hset(keys.ban(ban_id), mapping=...)         # the change
    events.emit(tx, "bans", "ban.created", ban)    # its event, same group as the change
    tx.execute()

From a Lua script: put ``events.LUA`` in front of the script's source and call
``emit(KEYS[n], 'record.top', data_json)`` with the outbox key passed in KEYS.

The worker reads the outboxes of ``FIXED_TAGS`` and one per board (from the board index). A
group that starts emitting events adds its tag to ``FIXED_TAGS``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from shared import keys

EVENTS = ("ban.created", "ban.lifted", "record.top", "season.ended", "server.online",
          "server.offline")
# entries kept per outbox (approximately): what a worker that stopped can catch up on
OUTBOX_MAX = 10000
# groups whose outbox the worker drains, besides each board's ``b:<board>``
FIXED_TAGS = ("status", "bans")

# Lua: emit(outbox key, event name, data as JSON text): one XADD, capped like emit().
LUA = f"""
local function emit(key, event, data)
  redis.call('XADD', key, 'MAXLEN', '~', {OUTBOX_MAX}, '*', 'e', event, 'd', data)
end
"""


def emit(pipe: Any, tag: str, event: str, data: dict[str, Any]) -> None:
    """Queue the event ``event`` with ``data`` on ``pipe``: one XADD into the outbox of the
    group ``{tag}`` (the group the change itself writes, e.g. ``"bans"`` or ``"status"``).

    ``pipe`` is the cause's own MULTI/EXEC pipeline; whoever created it executes it. The
    event's time (``at``) is Redis's, taken from the entry id. ``data`` is any JSON object."""
    assert event in EVENTS, event
    pipe.xadd(keys.outbox(tag), {"e": event, "d": json.dumps(data, separators=(",", ":"))},
              maxlen=OUTBOX_MAX, approximate=True)


def outbox_tags(boards: Iterable[str]) -> list[str]:
    """The tags of every outbox the worker drains, given the board ids of the board index."""
    return [*FIXED_TAGS, *(f"b:{b}" for b in sorted(boards))]


def event_id(tag: str, stream_id: str) -> str:
    """An event's id as webhooks see it (``X-SSM-Event-Id``): unique across outboxes."""
    return f"{tag}/{stream_id}"


def stream_ms(stream_id: str) -> int:
    return int(stream_id.partition("-")[0])


def newer(a: str, b: str | None) -> bool:
    """Whether stream id ``a`` comes after ``b`` (None: nothing yet)."""
    if b is None:
        return True
    (am, _, aseq), (bm, _, bseq) = a.partition("-"), b.partition("-")
    return (int(am), int(aseq or 0)) > (int(bm), int(bseq or 0))
