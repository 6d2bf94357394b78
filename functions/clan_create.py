from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.errors import ClanExists, InClan, NotFound
from shared.redis_conn import batch
from shared.registry import PLAYER, operation
from shared.schema import Str
from shared.storage import clans

CLAN_TAG = Str("tag", where="path", pattern=clans.TAG,
               doc="2 to 7 of A-Z a-z 0-9 _ . - (case-insensitive)")


@operation("clan.create", "PUT", "/v1/clans/{tag}", auth=PLAYER, status=201, account=("clan",),
           fields=(CLAN_TAG, Str("name", min_len=1, max_len=64)),
           example={"request": {"tag": "ACE", "name": "Aces High"},
                    "response": {"tag": "ACE", "name": "Aces High", "owner": "alice",
                                 "members": ["alice"], "created": 1717000000}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Found a clan: the calling player becomes its owner and first member.

    The tag is protected from then on: ``name.check`` refuses nicknames carrying it (``TAG|x``,
    ``[TAG]x``, ``x|TAG``, ``(TAG)x``, any case) to players who are not members. A player is in
    at most one clan.

    Errors:
    - ``clan_exists`` (409): a clan has this tag (in any case).
    - ``in_clan`` (409): the player is in a clan already (leave it first).

    Internals:
    The account's clan field comes with the session check. When it names a clan, one read
    checks that clan still lists the player. Then one pipeline: the clan (record and member
    index, only if the tag is free) and the account's clan field (compare-and-set); a failed
    half is undone.
    """
    lname, ltag = ctx.caller.lname, args["tag"].lower()
    pointer = ctx.caller.account.get("clan") or ""
    if clans.still_member(ctx.redis, lname, pointer):
        raise InClan(f"you are in clan {pointer} already: leave it first")
    created, claimed = batch(
        ctx.redis, (clans.CREATE, clans.group(ltag), [args["tag"], args["name"], lname,
                                                       ctx.now_ms()]),
        (clans.CLAIM, [keys.player(lname)], [pointer, ltag]))
    if not created:
        if claimed == 1:
            clans.CLAIM(ctx.redis, [keys.player(lname)], [ltag, pointer])
        raise ClanExists(f"a clan with the tag {args['tag']} exists")
    if claimed != 1:  # the account changed meanwhile (another clan, or deleted): undo
        clans.DELETE(ctx.redis, clans.group(ltag), [""])
        if claimed == -1:
            raise NotFound(f"no player named {ctx.caller.name}")
        raise InClan("you joined a clan meanwhile")
    return {"tag": args["tag"], "name": args["name"], "owner": ctx.caller.name,
            "members": [ctx.caller.name], "created": ctx.now_ms() // 1000}
