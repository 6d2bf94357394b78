from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.registry import operation
from shared.storage import records


@operation("season.list", "GET", "/v1/boards/{board}/seasons", aliases=("SEASONS",),
           fields=(records.BOARD,),
           example={"request": {"board": "ctf.daily"},
                    "response": {"board": "ctf.daily", "order": "desc", "operator": "best",
                                 "reset": "daily", "current": 1,
                                 "seasons": [
                                     {"season": 1, "start": 1717027200, "end": 1717113600,
                                      "top": [{"rank": 1, "player": "bob", "score": 9}]},
                                     {"season": 0, "start": 1716940800, "end": 1717027200,
                                      "top": [{"rank": 1, "player": "alice", "score": 7},
                                              {"rank": 2, "player": "bob", "score": 5}]}]}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """A board's seasons, the current one first, each with its top 3.

    The answer also names the board's ``order``, ``operator`` and ``reset`` (null without).
    A board created with ``reset`` starts a new season at every UTC midnight (``daily``),
    Monday 00:00 (``weekly``) or first of the month (``monthly``). ``current`` is the number of
    the season now running; season 0 is the one the board was created in. Each season has its
    ``start`` and ``end`` (unix seconds: the calendar boundaries, so season 0 starts before the
    board's ``created``) and its ``top``: up to 3 ``{rank, player, score}``, live for the
    current season, as the season ended for the others. The last SEASONS_KEPT (24) seasons
    before the current one are listed and readable with ``season.records``; older ones are
    dropped. A board without ``reset`` has one endless season: 0, with ``end`` null.

    Errors:
    - ``not_found`` (404): the board does not exist.

    Internals:
    On the board's slot (``records.season_listing``): its meta and archive with the current
    season's top 3 (its keys need no meta) in one round trip; a second reads any ended season
    the worker has not archived yet (live from its keys).
    """
    return records.season_listing(ctx.redis, args["board"], ctx.now(),
                                  ctx.config.seasons_kept)[0]
