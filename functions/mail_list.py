from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.redis_conn import Lua
from shared.registry import PLAYER, operation
from shared.schema import Bool, Int, Str
from shared.storage import mail

# KEYS: mailbox or unread zset; ARGV: max score ('+inf' or '(seq'), limit, mail key prefix.
# Returns {more, id, seq, from, subject, at, read, id, ...}, newest first.
LIST = Lua("""
local got = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '-inf', 'WITHSCORES',
                       'LIMIT', 0, tonumber(ARGV[2]) + 1)
local n = math.min(#got / 2, tonumber(ARGV[2]))
local out = {#got / 2 > n and 1 or 0}
for i = 1, n do
  local id = got[2 * i - 1]
  local m = redis.call('HMGET', ARGV[3] .. id, 'from', 'subject', 'at', 'read')
  for _, v in ipairs({id, got[2 * i], m[1], m[2], m[3], m[4]}) do out[#out + 1] = v end
end
return out""")
COLUMNS = ("from", "subject", "at", "read")


def reads(pipe: Any, args: dict[str, Any], lname: str) -> None:
    zset = keys.mailbox_unread(lname) if args["unread"] else keys.mailbox(lname)
    top = f"({args['cursor']}" if args.get("cursor") else "+inf"
    LIST(pipe, [zset], [top, args["limit"], keys.mail(lname, "")], pipeline=pipe)


@operation("mail.list", "GET", "/v1/mail", auth=PLAYER, aliases=("INBOX",), prefetch=reads,
           fields=(Bool("unread", where="query", required=False, default=False,
                        doc="1 = only unread mail"),
                   Str("cursor", where="query", required=False, pattern=r"[0-9]{1,15}",
                       doc="next_cursor of the previous page"),
                   Int("limit", where="query", required=False, default=20, lo=1, hi=100)),
           example={"request": {"unread": True, "limit": 20},
                    "response": {"mail": [{"id": "m4t8z1c6v0bn", "from": "bob",
                                           "subject": "rematch?", "at": 1717000600.5,
                                           "read": False}],
                                 "next_cursor": None}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """The calling player's mail, newest first, without the bodies.

    ``from`` is the sender's name. To read the next page, pass ``next_cursor`` as ``cursor``; it is
    null on the last page. Pages stay stable while new mail arrives. Read a mail in full with
    ``mail.read``.

    Internals:
    The cursor is the mailbox sequence of the last mail shown. The listing script travels with the
    credential check: one round trip in all.
    """
    (flat,) = ctx.fetch(reads, args)
    rows = [flat[i:i + 6] for i in range(1, len(flat), 6)]
    listed = [mail.summary(row[0], dict(zip(COLUMNS, row[2:], strict=True))) for row in rows]
    more = flat[0] == 1 and rows
    return {"mail": listed, "next_cursor": str(int(float(rows[-1][1]))) if more else None}
