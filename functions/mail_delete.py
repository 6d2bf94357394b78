from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.redis_conn import Lua
from shared.registry import PLAYER, operation
from shared.schema import Str
from shared.storage.mail import MAIL_ID

# KEYS: mailbox, unread, mail hash, notified set; ARGV: mail id. Returns 1, or 0 if none.
DELETE = Lua("""
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('DEL', KEYS[3])
return 1""")


@operation("mail.delete", "DELETE", "/v1/mail/{id}", auth=PLAYER, aliases=("DELMAIL",),
           fields=(Str("id", where="path", pattern=MAIL_ID),),
           example={"request": {"id": "m4t8z1c6v0bn"}, "response": None})
def handler(ctx: Ctx, args: dict[str, Any]) -> None:
    """Delete one of the calling player's mails, freeing its place in the mailbox.

    Errors:
    - ``not_found`` (404): the player has no mail with this id.

    Internals:
    One script removes the mail hash and its place in the mailbox, unread and notified sets.
    """
    lname, mail_id = ctx.caller.lname, args["id"]
    if not DELETE(ctx.redis, [keys.mailbox(lname), keys.mailbox_unread(lname),
                              keys.mail(lname, mail_id), keys.mail_notified(lname)], [mail_id]):
        raise NotFound(f"no mail {mail_id}")
    return None
