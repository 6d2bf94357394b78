from __future__ import annotations

from typing import Any

from functions.clan_create import CLAN_TAG
from shared import keys
from shared.dispatch import Ctx
from shared.errors import ClanFull, Forbidden, InClan, NotFound
from shared.redis_conn import batch
from shared.registry import PLAYER, operation
from shared.storage import clans


@operation("clan.accept", "POST", "/v1/clans/{tag}/join", auth=PLAYER, account=("clan",),
           fields=(CLAN_TAG,),
           example={"request": {"tag": "ACE"},
                    "response": {"tag": "ACE", "player": "alice", "state": "member"}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Join a clan you were invited into: you are a member from now on.

    Joining twice changes nothing.

    Errors:
    - ``not_found`` (404): no clan has this tag.
    - ``forbidden`` (403): you were not invited (or the invitation was withdrawn, or was for
      an account of your name since deleted).
    - ``in_clan`` (409): you are in another clan (leave it first).
    - ``clan_full`` (409): the clan has CLAN_MEMBERS_MAX members.

    Internals:
    The account's clan field comes with the session check (when it names another clan, one read
    checks that clan still lists the player). Then one pipeline: the member index entry (if
    invited and there is room) and the account's clan field (compare-and-set); a failed half is
    undone.
    """
    lname, ltag = ctx.caller.lname, args["tag"].lower()
    pointer = ctx.caller.account.get("clan") or ""
    if pointer != ltag and clans.still_member(ctx.redis, lname, pointer):
        raise InClan(f"you are in clan {pointer}: leave it first")
    (code, tag), claimed = batch(
        ctx.redis, (clans.ACCEPT, clans.group(ltag),
                    [lname, ctx.now_ms(), ctx.config.clan_members_max, ctx.caller.id]),
        (clans.CLAIM, [keys.player(lname)], [pointer, ltag]))
    if code < 0:
        if claimed == 1 and pointer != ltag:
            clans.CLAIM(ctx.redis, [keys.player(lname)], [ltag, pointer])
        if code == -1:
            raise NotFound(f"no clan with the tag {args['tag']}")
        if code == -2:
            raise Forbidden(f"you were not invited into {tag}")
        raise ClanFull(f"{tag} has {ctx.config.clan_members_max} members already")
    if claimed != 1 and code == 1:  # the account changed meanwhile: take the entry back
        ctx.redis.zrem(keys.clan_members(ltag), lname)
        raise InClan("your clan changed meanwhile; try again")
    return {"tag": tag, "player": ctx.caller.name, "state": "member"}
