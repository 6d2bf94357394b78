from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.registry import ADMIN, operation


@operation("server.list", "GET", "/v1/servers", auth=ADMIN,
           example={"request": {},
                    "response": {"servers": [{"id": "k3x9q2w7m1ab", "name": "Desert CTF #1",
                                              "created": 1717000000}]}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Every registered game server, oldest first, with its id, name and creation time.

    Keys are never shown: only their hashes are stored.

    Internals:
    Reads the server directory, then each server's record in one pipeline: two round trips.
    """
    ids = sorted(ctx.redis.smembers(keys.servers_all()))
    pipe = ctx.redis.pipeline(transaction=False)
    for server_id in ids:
        pipe.hmget(keys.server(server_id), "name", "created")
    servers = [{"id": server_id, "name": name, "created": int(created)}
               for server_id, (name, created) in zip(ids, pipe.execute(), strict=True) if name]
    servers.sort(key=lambda s: (s["created"], s["id"]))
    return {"servers": servers}
