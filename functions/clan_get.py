from __future__ import annotations

from typing import Any

from functions.clan_create import CLAN_TAG
from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.registry import operation
from shared.storage import clans


@operation("clan.get", "GET", "/v1/clans/{tag}", aliases=("CLAN",), fields=(CLAN_TAG,),
           example={"request": {"tag": "ace"},
                    "response": {"tag": "ACE", "name": "Aces High", "owner": "alice",
                                 "members": ["alice", "bob"], "created": 1717000000}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """A clan: its tag, name, owner and members (in the order they joined).

    Errors:
    - ``not_found`` (404): no clan has this tag.

    Internals:
    Two round trips: the clan and its member index, then the members' accounts (a player is
    listed only while their account names this clan).
    """
    found = clans.listing(ctx.redis, args["tag"].lower())
    if found is None:
        raise NotFound(f"no clan with the tag {args['tag']}")
    return found
