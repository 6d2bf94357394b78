from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.registry import ADMIN, operation
from shared.schema import Int, Str
from shared.storage import audit


@operation("audit.list", "GET", "/v1/audit", auth=ADMIN, aliases=("AUDIT",),
           fields=(Str("cursor", where="query", required=False, pattern=audit.CURSOR,
                       doc="next_cursor of the previous page"),
                   Int("limit", where="query", required=False, default=50, lo=1, hi=500)),
           example={"request": {"limit": 2},
                    "response": {"entries": [
                        {"op": "ban.create", "by": "admin",
                         "target": "b7n2q4x8r1zc player=alice", "reason": "wallhack",
                         "at": 1717000000.125},
                        {"op": "server.create", "by": "admin",
                         "target": "k3x9q2w7m1ab name=Desert CTF #1", "reason": None,
                         "at": 1716990000.5}],
                        "next_cursor": "1716990000500-0"}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """The audit log (admin): every admin and moderation action, newest first.

    Recorded: server create, delete and key rotation, board create, ban create and lift (by the
    admin or a server), record void, clan transfer and delete, and player delete by the admin.
    Each entry says which operation (``op``), who (``by``: ``admin``, ``server:<id>`` or
    ``player:<name>``), on what (``target``), why (``reason``, when the action takes one) and
    when (``at``, unix seconds). Entries are kept for at least 365 days. Secrets (keys, tokens,
    passwords) never appear. Pass ``next_cursor`` to read older entries.
    """
    entries, cursor = audit.page(ctx.redis, args.get("cursor"), args["limit"])
    return {"entries": entries, "next_cursor": cursor}
