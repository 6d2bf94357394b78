from __future__ import annotations

import json
from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.registry import operation
from shared.storage import records, seasons


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
    Two round trips on the board's slot: its meta and archive, then the top 3 of the current
    season and of any ended season the worker has not archived yet (read live from its keys).
    """
    board = args["board"]
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.hmget(keys.board(board), "order", "operator", "reset", "created")
    pipe.hgetall(keys.board_seasons(board))
    (order, operator, reset, created), archived = pipe.execute()
    if not order:
        raise records.no_board(board)
    now, created_s = ctx.now(), float(created)
    if reset:
        current = seasons.number(reset, created_s, now)
        oldest = seasons.kept_from(current, ctx.config.seasons_kept)
        listed = [(n, *seasons.bounds(reset, created_s, n)) for n in range(current, oldest - 1, -1)]
    else:
        current, listed = 0, [(0, int(created_s), None)]
    live = [n for n, start, _ in listed if n == current or str(n) not in archived]
    pipe = ctx.redis.pipeline(transaction=False)
    for n, start, _ in listed:
        if n in live:
            records.TOP(ctx.redis, records.board_keys(board, start if reset else now), [0, 3],
                        pipeline=pipe)
    tops = dict(zip(live, pipe.execute(), strict=True))
    out = []
    for n, start, end in listed:
        if n in tops:  # TOP's answer: {more, record JSON...}
            top = seasons.top_of([json.loads(raw) for raw in (tops[n] or [0])[1:]
                                  if raw != "null"])
        else:
            top = seasons.top_of(json.loads(archived[str(n)]))
        out.append({"season": n, "start": start, "end": end, "top": top})
    return {"board": board, "order": order, "operator": operator, "reset": reset,
            "current": current, "seasons": out}
