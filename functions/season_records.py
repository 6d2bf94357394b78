from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.registry import operation
from shared.schema import Int, Str
from shared.storage import records


@operation("season.records", "GET", "/v1/boards/{board}/seasons/{season}/records",
           aliases=("SEASON",),
           fields=(records.BOARD,
                   Int("season", where="path", lo=0, hi=10**9,
                       doc="season number (0 is the first; see season.list)"),
                   Int("limit", where="query", required=False, lo=1, hi=100, default=10),
                   Str("cursor", where="query", required=False, pattern=r"[0-9]{1,9}",
                       doc="next_cursor of the previous page")),
           example={"request": {"board": "ctf.daily", "season": 0, "limit": 1},
                    "response": {"records": [{"rank": 1, "player": "alice", "score": 7,
                                              "meta": None, "server": "k3x9q2w7m1ab",
                                              "at": 1717001800.5}],
                                 "next_cursor": "1"}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """A page of one season of a leaderboard, best first.

    The same as ``record.top``, for any season still kept. An ended season is read-only: it shows
    the records as they stood when it ended. The current season is the one ``record.top`` shows. A
    board without ``reset`` has season 0 only.

    Errors:
    - ``not_found`` (404): the board does not exist, the season has not begun, or it is older
      than the last SEASONS_KEPT seasons and was dropped.

    Internals:
    Two round trips on the board's slot: its meta (reset, created), then the season's page.
    """
    t, _ = records.season_time(ctx.redis, args["board"], args["season"], ctx.now(),
                               ctx.config.seasons_kept)
    return records.page(ctx.redis, args["board"], t, int(args.get("cursor") or 0),
                        args["limit"])
