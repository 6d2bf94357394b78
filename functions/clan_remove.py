from __future__ import annotations

from typing import Any

from functions.clan_create import CLAN_TAG
from shared.dispatch import Ctx
from shared.errors import ClanOwner, Forbidden, NotFound
from shared.registry import PLAYER, operation
from shared.schema import PLAYER_PATH_NAME as NAME
from shared.storage import clans


@operation("clan.remove", "DELETE", "/v1/clans/{tag}/members/{name}", auth=PLAYER,
           aliases=("LEAVECLAN",), fields=(CLAN_TAG, NAME),
           example={"request": {"tag": "ACE", "name": "bob"}, "response": None})
def handler(ctx: Ctx, args: dict[str, Any]) -> None:
    """Remove a member or withdraw an invitation (the owner), or leave a clan (the member).

    The owner cannot leave their own clan: transfer it (the admin) or delete it. Answers 204.

    Errors:
    - ``not_found`` (404): no clan has this tag, or the player is neither a member nor invited.
    - ``forbidden`` (403): the caller is neither the owner nor that member.
    - ``clan_owner`` (409): the owner cannot leave their clan.

    Internals:
    One script on the clan checks the caller and drops the member index entry (or the
    invitation): that ends the membership. The member's account field is left behind; it names
    a clan that no longer lists them, which counts as no clan.
    """
    code = clans.REMOVE(ctx.redis, clans.group(args["tag"].lower()),
                        [ctx.caller.lname, args["name"].lower()])
    if code == -1:
        raise NotFound(f"no clan with the tag {args['tag']}")
    if code == -2:
        raise Forbidden("only the owner removes other members")
    if code == -3:
        raise ClanOwner("the owner cannot leave the clan: delete it, or ask the admin to "
                       "transfer it")
    if code == 0:
        raise NotFound(f"{args['name']} is not in {args['tag']}")
    return None
