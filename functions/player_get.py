from __future__ import annotations

from typing import Any

from shared import keys, players
from shared.redis_conn import Lua
from shared.registry import operation

# KEYS: account hash, live index. Returns [id, name, created, last_seen, server, live score].
PROFILE = Lua("""
local a = redis.call('HMGET', KEYS[1], 'id', 'name', 'created', 'last_seen', 'server')
local score = false
if a[5] then score = redis.call('ZSCORE', KEYS[2], a[5]) end
a[6] = score
return a""")

FIELDS = ("id", "name", "created", "last_seen", "server", "live")


@operation("player.get", "GET", "/v1/players/{name}", fields=(players.NAME,),
           aliases=("PLAYER", "WHOIS"))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """A player's public profile: ``{id, name, created, last_seen, online, server}``.

    Anyone may read it. ``last_seen`` is the last login or join (unix seconds, null if never);
    ``online`` is true and ``server`` set only while the player's server is live (a heartbeat
    within STATUS_TTL). Never includes secrets. One Redis round trip (a script). 404 not_found.
    """
    got = PROFILE(ctx.redis, [players.lkey(args["name"]), keys.status_live()])
    acct = {k: v for k, v in zip(FIELDS, got, strict=False) if v is not None}
    players.require(acct, args["name"])
    live = float(acct["live"]) if "live" in acct else None
    return players.public(acct, live, ctx)
