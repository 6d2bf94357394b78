from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.registry import operation
from shared.schema import Int, Str
from shared.storage import records


@operation("record.top", "GET", "/v1/boards/{board}/records", aliases=("TOP",),
           fields=(records.BOARD,
                   Int("limit", where="query", required=False, lo=1, hi=100, default=10),
                   Str("cursor", where="query", required=False, pattern=r"[0-9]{1,9}",
                       doc="next_cursor of the previous page")),
           example={"request": {"board": "ctf.ac_desert", "limit": 2},
                    "response": {"records": [{"rank": 1, "player": "alice", "score": 7,
                                              "meta": {"flags": 7, "frags": 31},
                                              "server": "k3x9q2w7m1ab", "at": 1717001800.5},
                                             {"rank": 2, "player": "bob", "score": 5,
                                              "meta": {"flags": 5, "frags": 22},
                                              "server": "k3x9q2w7m1ab", "at": 1717001750.0}],
                                 "next_cursor": "2"}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """A page of a leaderboard, best first.

    On a board with ``reset``, the current season's. Equal scores rank the older record first. To
    read the next page, pass ``next_cursor`` as ``cursor``; it is null on the last page. Ranks are
    those at the time of reading, so pages read while scores change may repeat or skip a record.

    Errors:
    - ``not_found`` (404): the board does not exist.
    """
    return records.page(ctx.redis, args["board"], ctx.now(), int(args.get("cursor") or 0),
                        args["limit"])
