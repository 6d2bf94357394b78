from __future__ import annotations

from typing import Any

from shared import boards, keys
from shared.errors import NotFound
from shared.players import NAME
from shared.registry import operation


@operation("record.of_player", "GET", "/v1/players/{name}/records", aliases=("RECORDS",),
           fields=(NAME,))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Every record a player holds: ``{records: [{board, rank, score, meta, server, at}]}``.

    Sorted by board id. Two round trips (account + board set, then one script call per board,
    pipelined); one when the player holds no record. Raises not_found (404) for an unknown
    player.
    """
    lname = args["name"].lower()
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.exists(keys.player(lname))
    pipe.smembers(keys.player_boards(lname))
    exists, board_ids = pipe.execute()
    if not exists:
        raise NotFound(f"no player named {args['name']}")
    board_ids = sorted(board_ids)

    def fill(p: Any) -> None:
        for board in board_ids:
            boards.evalsha(p, boards.ONE, boards.board_keys(board)[1:], [lname])

    found = boards.run_pipeline(ctx.redis, boards.ONE, fill) if board_ids else []
    records = []
    for board, hit in zip(board_ids, found, strict=True):
        if hit:
            rec = boards.render(hit[1], hit[0])
            del rec["player"]
            records.append({"board": board, **rec})
    return {"records": records}
