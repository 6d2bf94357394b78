from __future__ import annotations

from typing import Any

from shared import keys
from shared.auth import new_id, new_server_key, sha256
from shared.registry import ADMIN, operation
from shared.schema import Str


@operation("server.create", "POST", "/v1/servers", auth=ADMIN, status=201,
           secret_out=("key",), fields=(Str("name", min_len=1, max_len=64),))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Register a game server and issue its key (shown only in this answer).

    Stores the server hash with sha256 of the key, and adds the id to the broadcast directory.
    Returns ``{id, name, key, created}`` (201). A repeat with the same Idempotency-Key answers
    ``{id, name, created}`` of the first call, without the key (rotate the key to get a new one).
    """
    server_id = new_id()
    key = new_server_key(server_id)
    created = int(ctx.now())
    tx = ctx.redis.pipeline()
    tx.hset(keys.server(server_id), mapping={"id": server_id, "name": args["name"],
                                             "key": sha256(key), "created": created})
    tx.sadd(keys.servers_all(), server_id)
    tx.execute()
    return {"id": server_id, "name": args["name"], "key": key, "created": created}
