from __future__ import annotations

from typing import Any

from shared import keys, limits
from shared.auth import hash_password, new_id
from shared.errors import Conflict
from shared.players import PASSWORD_MAX, PASSWORD_MIN
from shared.redis_conn import Lua
from shared.registry import operation
from shared.schema import PLAYER_NAME, Str

# A hash without ``id`` is a leftover (a last_seen or presence write racing a player.delete):
# it does not hold the name.
CREATE = Lua("""
if redis.call('HEXISTS', KEYS[1], 'id') == 1 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'name', ARGV[2], 'created', ARGV[3], 'pw', ARGV[4])
return 1""")


@operation("player.register", "POST", "/v1/players", status=201, aliases=("REGISTER",),
           fields=(Str("name", pattern=PLAYER_NAME,
                       doc="2-15 chars of A-Z a-z 0-9 _ . - [ ] ( ) |"),
                   Str("password", min_len=PASSWORD_MIN, max_len=PASSWORD_MAX, secret=True)))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Register a player; names are unique case-insensitively, display case kept.

    Stores the account hash (scrypt password hash). Registrations without a server key are
    limited per address per hour. Raises name_taken (409) or rate_limited (429).
    """
    if ctx.caller.kind != "server":
        limits.count_registration(ctx)
    name = args["name"]
    player_id, created = new_id(), int(ctx.now())
    pw = hash_password(args["password"], ctx.config.scrypt_log2_n)
    if not CREATE(ctx.redis, [keys.player(name.lower())], [player_id, name, created, pw]):
        raise Conflict(f"the name {name} is taken", code="name_taken")
    return {"id": player_id, "name": name, "created": created}
