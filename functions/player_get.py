from __future__ import annotations

import json
from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.registry import operation
from shared.schema import PLAYER_PATH_NAME
from shared.storage import clans
from shared.storage.status import is_live

FIELDS = ("id", "name", "created", "last_seen", "server", "clan")


@operation("player.get", "GET", "/v1/players/{name}", fields=(PLAYER_PATH_NAME,),
           aliases=("PLAYER", "WHOIS"),
           example={"request": {"name": "alice"},
                    "response": {"id": "w2k7r9d1x5qa", "name": "alice", "created": 1717000000,
                                 "last_seen": 1717003600, "online": True,
                                 "server": "k3x9q2w7m1ab", "clan": "ACE"}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """A player's public profile, including where they are playing now and their clan.

    Anyone may read it. ``last_seen`` is the time of their last login or arrival on a server
    (unix seconds; null if never). ``online`` is true, and ``server`` is the id of the game server
    they play on, only while that server is live (it sent a heartbeat within the last STATUS_TTL
    seconds) and public: on a private server (``public: false``, which ``status.get`` hides too)
    the player is ``online`` with ``server`` null. ``clan`` is the tag of the player's clan as
    its founder wrote it, present only while they are a member (not when merely invited). A
    profile never shows a password or a token.

    Errors:
    - ``not_found`` (404): no player has this name.

    Internals:
    Reads the account, then in one pipeline (when the account names a server or a clan) that
    server's heartbeat (its time and whether it is public) and the clan's member entry and tag:
    each group on its own slot. A clan that no longer lists the player (left, removed, deleted)
    means no clan.
    """
    lname = args["name"].lower()
    acct = dict(zip(FIELDS, ctx.redis.hmget(keys.player(lname), *FIELDS), strict=True))
    if acct["id"] is None:
        raise NotFound(f"no player named {args['name']}")
    server, ltag = acct["server"] or None, acct["clan"] or ""
    live = listed = tag = status = None
    if server or ltag:
        pipe = ctx.redis.pipeline(transaction=False)
        if server:
            pipe.zscore(keys.status_live(), server)
            pipe.hget(keys.status_data(), server)
        if ltag:
            pipe.zscore(keys.clan_members(ltag), lname)
            pipe.hget(keys.clan(ltag), "tag")
        got = iter(pipe.execute())
        live, status = (next(got), next(got)) if server else (None, None)
        listed, tag = (next(got), next(got)) if ltag else (None, None)
    online = bool(server and is_live(float(live) if live is not None else None, ctx))
    out = {"id": acct["id"], "name": acct["name"], "created": int(acct["created"]),
           "last_seen": int(acct["last_seen"]) if acct["last_seen"] else None,
           "online": online,
           "server": server if online and status and json.loads(status).get("public") else None}
    if tag and clans.member_of(acct["clan"], listed, ltag):
        out["clan"] = tag
    return out
