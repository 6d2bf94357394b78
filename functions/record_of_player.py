from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.registry import operation
from shared.schema import PLAYER_PATH_NAME
from shared.storage import records


@operation("record.of_player", "GET", "/v1/players/{name}/records", aliases=("RECORDS",),
           fields=(PLAYER_PATH_NAME,),
           example={"request": {"name": "alice"},
                    "response": {"records": [{"board": "ctf.ac_desert", "rank": 1, "score": 7,
                                              "meta": {"flags": 7, "frags": 31},
                                              "server": "k3x9q2w7m1ab", "at": 1717001800.5}]}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Every record a player holds, one per board, sorted by board id.

    Errors:
    - ``not_found`` (404): no player has this name.

    Internals:
    Two round trips: the account and the player's board set (one slot), then one script per
    board (each on its own slot), in one pipeline.
    """
    lname = args["name"].lower()
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.exists(keys.player(lname))
    pipe.smembers(keys.player_boards(lname))
    found, boards = pipe.execute()
    if not found:
        raise NotFound(f"no player named {args['name']}")
    boards, now = sorted(boards), ctx.now()
    pipe = ctx.redis.pipeline(transaction=False)
    for board in boards:
        records.OF_PLAYER(ctx.redis, records.board_keys(board, now), [lname], pipeline=pipe)
    listed = []
    for board, got in zip(boards, pipe.execute() if boards else [], strict=True):
        if got:
            rec = records.render(got[1], got[0])
            del rec["player"]
            listed.append({"board": board, **rec})
    listed.sort(key=lambda rec: rec["board"])
    return {"records": listed}
