from __future__ import annotations

import json
from typing import Any

from shared import keys
from shared.errors import InvalidInput
from shared.registry import SERVER, operation
from shared.schema import SERVER_ID, Bool, Int, Str, StrList

FIELDS = (
    Str("id", where="path", pattern=SERVER_ID),
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


@operation("status.update", "PUT", "/v1/servers/{id}/status", auth=SERVER, owner="id",
           fields=FIELDS, aliases=("HEARTBEAT",))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Heartbeat: publish this server's status; it stays listed for STATUS_TTL seconds.

    Stores the payload in the status hash and the heartbeat time in the live index (one
    MULTI/EXEC). Returns the status as listed, with ``updated`` and ``expires_at``. Raises
    invalid_input (400) for more ``players`` than ``max_players``.
    """
    if len(args["players"]) > args["max_players"]:
        raise InvalidInput("players", f"lists {len(args['players'])} players but max_players "
                                      f"is {args['max_players']}")
    now_ms = ctx.now_ms()
    data = {k: args[k] for k in ("name", "host", "port", "map", "mode", "players",
                                 "max_players", "version", "public")}
    data["updated"] = now_ms / 1000
    tx = ctx.redis.pipeline()
    tx.zadd(keys.status_live(), {args["id"]: now_ms})
    tx.hset(keys.status_data(), args["id"], json.dumps(data))
    tx.execute()
    return {"id": args["id"], **data, "player_count": len(data["players"]),
            "expires_at": now_ms / 1000 + ctx.config.status_ttl}
