"""Server inboxes: every server reads one Redis stream holding all that is addressed to it.

A send to a server id, to ``*`` (every registered server but the sender) or to ``#channel``
(every member but the sender) appends one entry to each target inbox, in one script (all
messaging keys share the ``{msg}`` tag). Every copy carries the same stream id, taken from a
small id log, so a message has one id everywhere. Entry fields: ``e`` (event: message | mail |
server_offline) and ``d`` (JSON payload). ``message.read`` and relay pushes read these streams.
"""

from __future__ import annotations

import json
from typing import Any

from shared import keys
from shared.errors import NotFound
from shared.redis_conn import Lua

ID_LOG = "ssm:{msg}:idlog"

# KEYS: servers set, id log, target set (channel members; unused otherwise)
# ARGV: mode (server|all|set), target server id, sender, event, data, cap, inbox prefix
DELIVER = Lua("""
local mode, target, sender = ARGV[1], ARGV[2], ARGV[3]
local targets
if mode == 'server' then
  if redis.call('SISMEMBER', KEYS[1], target) == 0 then return false end
  targets = {target}
elseif mode == 'all' then
  targets = redis.call('SMEMBERS', KEYS[1])
else
  targets = redis.call('SMEMBERS', KEYS[3])
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', 'e', ARGV[4])
local n = 0
for _, t in ipairs(targets) do
  if mode == 'server' or t ~= sender then
    redis.call('XADD', ARGV[7] .. t, 'MAXLEN', '~', ARGV[6], id, 'e', ARGV[4], 'd', ARGV[5])
    n = n + 1
  end
end
return {id, n}""")


def deliver(r: Any, config: Any, to: str, sender: str, event: str,
            data: dict[str, Any]) -> tuple[str, int]:
    """Append ``data`` to the inbox of each target of ``to``; returns (stream id, copies).

    ``to`` is a server id, ``*`` or ``#channel``. NotFound for an unknown server id.
    """
    if to == "*":
        mode, target, members = "all", "", keys.servers_all()
    elif to.startswith("#"):
        mode, target, members = "set", "", keys.channel(to[1:])
    else:
        mode, target, members = "server", to, keys.servers_all()
    got = DELIVER(r, [keys.servers_all(), ID_LOG, members],
                  [mode, target, sender, event, json.dumps(data), config.message_hard_cap,
                   keys.inbox_prefix()])
    if not got:
        raise NotFound(f"no server with id {to}")
    return got[0], int(got[1])


def entry(stream_id: str, fields: dict[str, str]) -> dict[str, Any]:
    """One inbox entry as message.read returns it: ``{id, from, to, type, body, at, ...}``."""
    return {"id": stream_id, **json.loads(fields.get("d", "{}"))}


def event(fields: dict[str, str]) -> str:
    return fields.get("e", "message")


def read(r: Any, server_id: str, cursor: str, count: int,
         block_ms: int | None = None) -> list[tuple[str, dict[str, str]]]:
    """Entries after ``cursor`` ("0" = the oldest kept), waiting up to ``block_ms`` if none."""
    if block_ms:
        got = r.xread({keys.inbox(server_id): cursor}, count=count, block=block_ms)
        return got[0][1] if got else []
    return r.xrange(keys.inbox(server_id), min=f"({cursor}" if cursor != "0" else "-",
                    count=count)
