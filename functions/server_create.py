from __future__ import annotations

from typing import Any

from shared import keys
from shared.auth import new_id, new_server_key, sha256
from shared.dispatch import Ctx
from shared.redis_conn import Ordered
from shared.registry import ADMIN, operation
from shared.schema import Str


@operation("server.create", "POST", "/v1/servers", auth=ADMIN, status=201,
           secret_out=("key",), audit=("id", "name"),
           fields=(Str("name", min_len=1, max_len=64),),
           example={"request": {"name": "Desert CTF #1"},
                    "response": {"id": "k3x9q2w7m1ab", "name": "Desert CTF #1",
                                 "key": "s.k3x9q2w7m1ab.EXAMPLE-server-key",
                                 "created": 1717000000}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Register a game server (admin): returns its id and its key.

    Give the id and key to the server's operator: the key is the server's credential and is shown
    only in this answer (it cannot be read again; rotate it to get a new one). A repeat with the
    same Idempotency-Key answers the first call's ``{id, name, created}`` without the key.

    Internals:
    Adds the id to the broadcast directory (an index, a superset), then stores the server hash
    with the sha256 of the key (the owning record, last: docs/CLUSTER.md). One MULTI/EXEC on one
    Redis.
    """
    server_id = new_id()
    key = new_server_key(server_id)
    created = int(ctx.now())
    steps = Ordered(ctx.redis)
    steps.pipe.sadd(keys.servers_all(), server_id)
    steps.then().pipe.hset(keys.server(server_id), mapping={
        "id": server_id, "name": args["name"], "key": sha256(key), "created": created})
    steps.execute()
    return {"id": server_id, "name": args["name"], "key": key, "created": created}
