from __future__ import annotations

from typing import Any

from functions.clan_create import CLAN_TAG
from shared.dispatch import Ctx
from shared.errors import Forbidden, NotFound
from shared.registry import ADMIN, PLAYER, operation
from shared.schema import Str
from shared.storage import clans


@operation("clan.delete", "DELETE", "/v1/clans/{tag}", auth=PLAYER | ADMIN, audit="tag",
           fields=(CLAN_TAG, Str("reason", where="query", required=False, max_len=200,
                                 doc="why (kept in the audit log)")),
           example={"request": {"tag": "ACE"}, "response": None})
def handler(ctx: Ctx, args: dict[str, Any]) -> None:
    """Delete a clan (its owner, or the admin); its tag is free again at once.

    Every member is out of the clan at once. The deletion is in the audit log. Answers 204.

    Errors:
    - ``not_found`` (404): no clan has this tag.
    - ``forbidden`` (403): the caller does not own the clan.

    Internals:
    One script on the clan checks the owner and deletes its record, member index and
    invitations; members' account fields are left naming a clan that does not list them.
    """
    caller = "" if ctx.caller.kind == "admin" else ctx.caller.lname
    code = clans.DELETE(ctx.redis, clans.group(args["tag"].lower()), [caller])
    if code == -1:
        raise NotFound(f"no clan with the tag {args['tag']}")
    if code == -2:
        raise Forbidden("only the owner (or the admin) deletes a clan")
    return None
