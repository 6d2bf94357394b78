from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.registry import operation
from shared.schema import PLAYER_PATH_NAME, Int
from shared.storage import records


@operation("record.player", "GET", "/v1/boards/{board}/records/{name}", aliases=("RANK",),
           fields=(records.BOARD, PLAYER_PATH_NAME,
                   Int("around", where="query", required=False, lo=0, hi=50, default=0,
                       doc="neighbours to include on each side")),
           example={"request": {"board": "ctf.ac_desert", "name": "bob", "around": 1},
                    "response": {"rank": 2, "player": "bob", "score": 5,
                                 "meta": {"flags": 5, "frags": 22}, "server": "k3x9q2w7m1ab",
                                 "at": 1717001750.0,
                                 "around": [{"rank": 1, "player": "alice", "score": 7,
                                             "meta": {"flags": 7, "frags": 31},
                                             "server": "k3x9q2w7m1ab", "at": 1717001800.5}]}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """One player's record on a board, with the records ranked around it.

    ``around`` lists up to ``around`` records just above and just below the player's (fewer at
    either end of the board), best first, without the player's own record (so ``around=0`` gives
    an empty list).

    Errors:
    - ``not_found`` (404): the board does not exist, or the player has no record on it.
    """
    board, around = args["board"], args["around"]
    out = records.AROUND(ctx.redis, records.board_keys(board, ctx.now()),
                         [args["name"].lower(), around])
    if out is None:
        raise records.no_board(board)
    if not out:
        raise NotFound(f"player {args['name']} has no record on board {board}")
    first, *raws = out
    window = [records.render(raw, first + i) for i, raw in enumerate(raws) if raw != "null"]
    mine = next(rec for rec in window if rec["player"].lower() == args["name"].lower())
    return {**mine, "around": [rec for rec in window if rec["rank"] != mine["rank"]]}
