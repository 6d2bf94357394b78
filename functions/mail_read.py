from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.redis_conn import Lua
from shared.registry import PLAYER, operation
from shared.schema import Str
from shared.storage.mail import MAIL_ID

# KEYS: mailbox, unread, mail hash; ARGV: mail id. Returns the hash (flat) or false.
READ = Lua("""
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return false end
redis.call('HSET', KEYS[3], 'read', '1')
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('HGETALL', KEYS[3])""")


@operation("mail.read", "GET", "/v1/mail/{id}", auth=PLAYER, aliases=("READMAIL",),
           fields=(Str("id", where="path", pattern=MAIL_ID),),
           example={"request": {"id": "m4t8z1c6v0bn"},
                    "response": {"id": "m4t8z1c6v0bn", "from": "bob", "subject": "rematch?",
                                 "body": "Good game! Same map tonight at 21:00?",
                                 "at": 1717000600.5, "read": True}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Read one of the calling player's mails in full; it is marked read.

    Errors:
    - ``not_found`` (404): the player has no mail with this id (another player's mail is not found
      either).

    Internals:
    One script checks, marks read and reads the mail.
    """
    lname, mail_id = ctx.caller.lname, args["id"]
    flat = READ(ctx.redis, [keys.mailbox(lname), keys.mailbox_unread(lname),
                            keys.mail(lname, mail_id)], [mail_id])
    if not flat:
        raise NotFound(f"no mail {mail_id}")
    m = dict(zip(flat[::2], flat[1::2], strict=True))
    return {"id": mail_id, "from": m["from"], "subject": m["subject"], "body": m["body"],
            "at": float(m["at"]), "read": True}
