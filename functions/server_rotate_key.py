from __future__ import annotations

from typing import Any

from shared import keys
from shared.auth import new_server_key, sha256
from shared.errors import NotFound
from shared.redis_conn import Lua
from shared.registry import ADMIN, operation
from shared.schema import SERVER_ID, Str

# KEYS[1] server hash; ARGV[1] sha256 of the new key. Returns the server name, or false.
ROTATE = Lua("""
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'key', ARGV[1])
return redis.call('HGET', KEYS[1], 'name')""")


@operation("server.rotate_key", "POST", "/v1/servers/{id}/key", auth=ADMIN,
           secret_out=("key",), aliases=("ROTATE",),
           fields=(Str("id", where="path", pattern=SERVER_ID),))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Issue a new key for a server (shown only in this answer); the old key is refused at once.

    Stores sha256 of the new key in the server hash. Returns ``{id, name, key}`` (200).
    A repeat with the same Idempotency-Key rotates nothing and answers ``{id, name}`` of the
    first call, without the key (a new key needs a new Idempotency-Key, or none).
    404 not_found for an unknown id.
    One Redis round trip (a script).
    """
    key = new_server_key(args["id"])
    name = ROTATE(ctx.redis, [keys.server(args["id"])], [sha256(key)])
    if name is None:
        raise NotFound(f"no server with id {args['id']}")
    return {"id": args["id"], "name": name, "key": key}
