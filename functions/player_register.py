from __future__ import annotations

from typing import Any

from shared import keys
from shared.auth import hash_password, new_id
from shared.dispatch import Ctx
from shared.errors import NameTaken
from shared.redis_conn import Lua
from shared.registry import operation
from shared.schema import PASSWORD_MAX, PASSWORD_MIN, PLAYER_NAME, Str
from shared.storage import limits

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
                   Str("password", min_len=PASSWORD_MIN, max_len=PASSWORD_MAX, secret=True)),
           example={"request": {"name": "alice", "password": "correct-horse-42"},
                    "response": {"id": "w2k7r9d1x5qa", "name": "alice", "created": 1717000000}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Register a player; the name is theirs for good, in any letter case.

    Names are unique without regard to case (``Alice`` and ``alice`` are the same player); the
    case given here is the one shown. Passwords are stored only as a slow hash. Registering needs no
    credential; calls without a game server's key are limited to REGISTER_LIMIT_PER_IP_HOUR per
    address per hour, calls with one to REGISTER_LIMIT_PER_SERVER_HOUR per server key per hour.

    Errors:
    - ``name_taken`` (409): a player already has this name (in any case).
    - ``rate_limited`` (429): too many registrations from this address (or server key); retry
      after ``Retry-After``.

    Internals:
    Stores the account hash with the scrypt hash of the password.
    """
    if ctx.caller.kind != "server":
        limits.count_registration(ctx)
    else:
        limits.count_server_registration(ctx)
    name = args["name"]
    player_id, created = new_id(), int(ctx.now())
    pw = hash_password(args["password"], ctx.config.scrypt_log2_n)
    if not CREATE(ctx.redis, [keys.player(name.lower())], [player_id, name, created, pw]):
        raise NameTaken(f"the name {name} is taken")
    return {"id": player_id, "name": name, "created": created}
