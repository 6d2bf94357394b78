from __future__ import annotations

from typing import Any

from functions.clan_create import CLAN_TAG
from shared import keys
from shared.dispatch import Ctx
from shared.errors import NotFound, NotMember
from shared.registry import ADMIN, operation
from shared.schema import PLAYER_NAME, Str
from shared.storage import clans


@operation("clan.transfer", "PUT", "/v1/clans/{tag}/owner", auth=ADMIN,
           audit=("tag", "player"),
           fields=(CLAN_TAG, Str("player", pattern=PLAYER_NAME, doc="a member of the clan"),
                   Str("reason", required=False, max_len=200, doc="why (kept in the audit log)")),
           example={"request": {"tag": "ACE", "player": "bob", "reason": "owner inactive"},
                    "response": {"tag": "ACE", "owner": "bob"}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Make another member the owner of a clan (the admin, to settle disputes).

    The transfer is in the audit log.

    Errors:
    - ``not_found`` (404): no clan has this tag, or no player has this name.
    - ``not_member`` (409): the player is not a member of the clan.

    Internals:
    The player's account (their clan field), then one script on the clan that checks the member
    index and sets the owner.
    """
    ltag, lname = args["tag"].lower(), args["player"].lower()
    name, pointer = ctx.redis.hmget(keys.player(lname), "name", "clan")
    if name is None:
        raise NotFound(f"no player named {args['player']}")
    code, tag = clans.TRANSFER(ctx.redis, clans.group(ltag)[:2],
                               [lname, 1 if pointer == ltag else 0])
    if code == -1:
        raise NotFound(f"no clan with the tag {args['tag']}")
    if code == -2:
        raise NotMember(f"{name} is not a member of {tag}")
    return {"tag": tag, "owner": name}
