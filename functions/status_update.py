from __future__ import annotations

import json
from typing import Any

from shared import events, keys
from shared.dispatch import Ctx
from shared.errors import InvalidInput
from shared.redis_conn import Lua
from shared.registry import SERVER, operation
from shared.schema import SERVER_PATH_ID, Bool, Int, Str, StrList
from shared.storage.status import cutoff_ms

FIELDS = (
    SERVER_PATH_ID,
    Str("name", min_len=1, max_len=64),
    Str("host", min_len=1, max_len=255, pattern=r"[A-Za-z0-9_.:\-\[\]]+",
        doc="hostname or IP address players connect to"),
    Int("port", lo=1, hi=65535),
    Str("map", max_len=64),
    Str("mode", max_len=32),
    StrList("players", Str("player", min_len=1, max_len=15), max_items=64,
            doc="in-game names as shown, registered or not"),
    Int("max_players", lo=0, hi=1024),
    Str("version", max_len=32),
    Bool("public"),
)

# KEYS: live index, status data, status outbox, list version. ARGV: id, now (ms), payload JSON,
# event data JSON, the payload's JSON up to its last field ``updated`` (what the list shows),
# the oldest live heartbeat (ms). A server absent from the live index (new, or expired by the
# sweep) emits server.online. The list's version goes up when the heartbeat changes what the
# list shows: a server not live before, or a payload that differs in more than ``updated``
# (its age is rendered from the timestamp, so a repeated heartbeat keeps the rendered list).
HEARTBEAT = Lua(events.LUA + """
local prev = redis.call('ZSCORE', KEYS[1], ARGV[1])
local old = redis.call('HGET', KEYS[2], ARGV[1])
local new = redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if new == 1 then emit(KEYS[3], 'server.online', ARGV[4]) end
if not prev or tonumber(prev) < tonumber(ARGV[6]) or not old
   or string.sub(old, 1, #ARGV[5]) ~= ARGV[5] then
  redis.call('INCR', KEYS[4])
end
return new""")


@operation("status.update", "PUT", "/v1/servers/{id}/status", auth=SERVER, owner="id",
           fields=FIELDS, aliases=("HEARTBEAT",),
           example={"request": {"id": "k3x9q2w7m1ab", "name": "Desert CTF #1",
                                "host": "ac.example.org", "port": 28763, "map": "ac_desert",
                                "mode": "ctf", "players": ["alice", "bob"], "max_players": 16,
                                "version": "1.3.0", "public": True},
                    "response": {"id": "k3x9q2w7m1ab", "name": "Desert CTF #1",
                                 "host": "ac.example.org", "port": 28763, "map": "ac_desert",
                                 "mode": "ctf", "players": ["alice", "bob"], "max_players": 16,
                                 "version": "1.3.0", "public": True, "updated": 1717000000.25,
                                 "player_count": 2, "expires_at": 1717000090.25}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Heartbeat: publish the calling server's status; repeat at least every STATUS_TTL seconds.

    While heartbeats keep coming, the server is live: it may bring players online and submit
    records, and when ``public`` is true it appears in the server list. Without a heartbeat for
    STATUS_TTL seconds it drops out, its players go offline and the other servers get a
    ``server_offline`` message. ``players`` lists the in-game names as shown, registered or not.
    Returns the status as listed, with ``updated`` and ``expires_at`` (unix seconds).
    The first heartbeat of a new server, or of one that dropped out, is a ``server.online``
    webhook event.

    Errors:
    - ``invalid_input`` (400): a field breaks its rule, or ``players`` lists more names than
      ``max_players``.

    Internals:
    Stores the payload in the status hash and the heartbeat time in the live index (one
    script, which also writes server.online into the {status} outbox and bumps the public
    list's version when what the list shows changed: everything but the heartbeat's time).
    """
    if len(args["players"]) > args["max_players"]:
        raise InvalidInput("players", f"lists {len(args['players'])} players but max_players "
                                      f"is {args['max_players']}")
    now_ms = ctx.now_ms()
    data = {k: args[k] for k in ("name", "host", "port", "map", "mode", "players",
                                 "max_players", "version", "public")}
    data["updated"] = now_ms / 1000
    listed = {"id": args["id"], **data, "player_count": len(data["players"])}
    shown = json.dumps(data)
    HEARTBEAT(ctx.redis, [keys.status_live(), keys.status_data(), keys.outbox("status"),
                          keys.status_version()],
              [args["id"], now_ms, shown, json.dumps(listed), shown[:shown.rindex(" ") + 1],
               cutoff_ms(ctx)])
    return {**listed, "expires_at": now_ms / 1000 + ctx.config.status_ttl}
