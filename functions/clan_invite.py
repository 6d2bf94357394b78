from __future__ import annotations

from typing import Any

from functions.clan_create import CLAN_TAG
from shared import keys
from shared.dispatch import Ctx
from shared.errors import ClanFull, Forbidden, NotFound
from shared.registry import PLAYER, operation
from shared.schema import PLAYER_PATH_NAME as NAME
from shared.storage import clans


@operation("clan.invite", "PUT", "/v1/clans/{tag}/members/{name}", auth=PLAYER,
           fields=(CLAN_TAG, NAME),
           example={"request": {"tag": "ACE", "name": "bob"},
                    "response": {"tag": "ACE", "player": "bob", "state": "invited"}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Invite a player into your clan (its owner only); they join with clan.accept.

    Answers ``state: "invited"``, or ``"member"`` when the player is a member already.

    The invitation is for the player's account: when it is deleted, a new account of the same
    name cannot accept it.

    Errors:
    - ``not_found`` (404): no clan has this tag, or no player has this name.
    - ``forbidden`` (403): the caller does not own the clan.
    - ``clan_full`` (409): the clan has CLAN_MEMBERS_MAX members.

    Internals:
    One pipeline reads the invitee's account (name and id) and the clan's tag and owner; then a
    script checks the owner and the size again and records the invitation with the invitee's
    account id.
    """
    ltag, who = args["tag"].lower(), args["name"].lower()
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.hmget(keys.player(who), "name", "id")
    pipe.hmget(keys.clan(ltag), "tag", "owner")
    (name, player_id), (tag, owner) = pipe.execute()
    code = -1 if tag is None else -2 if owner != ctx.caller.lname else 0
    if code == 0 and name is not None:
        code, tag = clans.INVITE(ctx.redis, clans.group(ltag),
                                 [ctx.caller.lname, who, ctx.now_ms(),
                                  ctx.config.clan_members_max, player_id])
    if code == -1:
        raise NotFound(f"no clan with the tag {args['tag']}")
    if code == -2:
        raise Forbidden(f"only the owner of {tag} invites players")
    if name is None:
        raise NotFound(f"no player named {args['name']}")
    if code == -3:
        raise ClanFull(f"{tag} has {ctx.config.clan_members_max} members already")
    return {"tag": tag, "player": name, "state": "member" if code == 2 else "invited"}
