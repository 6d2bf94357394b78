from __future__ import annotations

from typing import Any

from shared import boards
from shared.errors import NotFound
from shared.players import NAME
from shared.registry import operation
from shared.schema import Int


@operation("record.player", "GET", "/v1/boards/{board}/records/{name}", aliases=("RANK",),
           fields=(boards.BOARD, NAME,
                   Int("around", where="query", required=False, lo=0, hi=50, default=0,
                       doc="neighbours to include on each side")))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """One player's record on a board, with its neighbours.

    Returns ``{rank, player, score, meta, server, at, around}``. ``around`` lists the
    neighbours: up to ``around`` records ranked just above and just below the player (fewer at
    either end of the board), best first, each as record.top renders it; the player's own record
    is the top level, not repeated there (so ``around=0`` gives an empty list). One script
    call. Raises not_found (404) for an unknown board or when the player has no record on it.
    """
    board, around = args["board"], args["around"]
    out = boards.AROUND(ctx.redis, boards.board_keys(board), [args["name"].lower(), around])
    if out is None:
        raise boards.no_board(board)
    if not out:
        raise NotFound(f"player {args['name']} has no record on board {board}")
    first, *raws = out
    window = [boards.render(raw, first + i) for i, raw in enumerate(raws) if raw != "null"]
    mine = next(rec for rec in window if rec["player"].lower() == args["name"].lower())
    return {**mine, "around": [rec for rec in window if rec["rank"] != mine["rank"]]}
