from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.registry import operation
from shared.schema import PLAYER_PATH_NAME
from shared.storage.status import is_live

FIELDS = ("id", "name", "created", "last_seen", "server", "live")


@operation("player.get", "GET", "/v1/players/{name}", fields=(PLAYER_PATH_NAME,),
           aliases=("PLAYER", "WHOIS"),
           example={"request": {"name": "alice"},
                    "response": {"id": "w2k7r9d1x5qa", "name": "alice", "created": 1717000000,
                                 "last_seen": 1717003600, "online": True,
                                 "server": "k3x9q2w7m1ab"}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """A player's public profile, including where they are playing now.

    Anyone may read it. ``last_seen`` is the time of their last login or arrival on a server
    (unix seconds; null if never). ``online`` is true, and ``server`` is the id of the game server
    they play on, only while that server is live (it sent a heartbeat within the last STATUS_TTL
    seconds). A profile never shows a password or a token.

    Errors:
    - ``not_found`` (404): no player has this name.

    Internals:
    Reads the account, then (when it names a server) that server's heartbeat: each on its own
    slot.
    """
    got = ctx.redis.hmget(keys.player(args["name"].lower()), *FIELDS[:5])
    acct = {k: v for k, v in zip(FIELDS, got, strict=False) if v is not None}
    if acct.get("server"):
        acct["live"] = ctx.redis.zscore(keys.status_live(), acct["server"])
    if "id" not in acct:
        raise NotFound(f"no player named {args['name']}")
    server = acct.get("server") or None
    online = bool(server and is_live(float(acct["live"]) if "live" in acct else None, ctx))
    return {"id": acct["id"], "name": acct["name"], "created": int(acct["created"]),
            "last_seen": int(acct["last_seen"]) if acct.get("last_seen") else None,
            "online": online, "server": server if online else None}
