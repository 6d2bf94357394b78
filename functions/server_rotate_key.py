from __future__ import annotations

from typing import Any

from shared import keys
from shared.auth import new_server_key, sha256
from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.redis_conn import Lua, Ordered
from shared.registry import ADMIN, operation
from shared.schema import SERVER_PATH_ID
from shared.storage import revocations

# KEYS[1] server hash; ARGV[1] sha256 of the new key. Returns the server name, or false.
ROTATE = Lua("""
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'key', ARGV[1])
return redis.call('HGET', KEYS[1], 'name')""")


@operation("server.rotate_key", "POST", "/v1/servers/{id}/key", auth=ADMIN,
           secret_out=("key",), aliases=("ROTATE",), audit="id",
           fields=(SERVER_PATH_ID,),
           example={"request": {"id": "k3x9q2w7m1ab"},
                    "response": {"id": "k3x9q2w7m1ab", "name": "Desert CTF #1",
                                 "key": "s.k3x9q2w7m1ab.EXAMPLE-new-server-key"}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Issue a new key for a game server (admin); the old key stops working at once.

    The new key is shown only in this answer; the old key stops working at once. A repeat with
    the same Idempotency-Key rotates nothing and answers the first call's ``{id, name}`` without
    the key (a new key needs a new Idempotency-Key, or none).

    Errors:
    - ``not_found`` (404): no server has this id.

    Internals:
    One script stores the sha256 of the new key in the server hash; then one entry in the
    revocations stream ends the relay connections that used the old key (one MULTI/EXEC on one
    Redis, two steps on a cluster).
    """
    key = new_server_key(args["id"])
    steps = Ordered(ctx.redis)  # the new key, then the revocation (a hint: harmless if none)
    ROTATE(ctx.redis, [keys.server(args["id"])], [sha256(key)], pipeline=steps.pipe)
    revocations.announce(steps.then().pipe, revocations.SERVER, args["id"], "rotated")
    name = steps.execute()[0]
    if name is None:
        raise NotFound(f"no server with id {args['id']}")
    return {"id": args["id"], "name": name, "key": key}
