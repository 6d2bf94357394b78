from __future__ import annotations

from typing import Any

from shared import boards
from shared.registry import operation
from shared.schema import Int, Str


@operation("record.top", "GET", "/v1/boards/{board}/records", aliases=("TOP",),
           fields=(boards.BOARD,
                   Int("limit", where="query", required=False, lo=1, hi=100, default=10),
                   Str("cursor", where="query", required=False, pattern=r"[0-9]{1,9}",
                       doc="next_cursor of the previous page")))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """A page of a leaderboard, best first: ``{records: [...], next_cursor}``.

    Each record is ``{rank, player, score, meta, server, at}``; equal scores rank the earlier
    record first. ``limit`` 1..100 (default 10). ``cursor`` is opaque (today the offset as
    text); ``next_cursor`` is null on the last page. Ranks follow the board at read time, so a
    page read after new submissions may repeat or skip a record. One script call. Raises
    not_found (404) for an unknown board.
    """
    first, limit = int(args.get("cursor") or 0), args["limit"]
    out = boards.TOP(ctx.redis, boards.board_keys(args["board"]), [first, limit])
    if not out:
        raise boards.no_board(args["board"])
    more, *raws = out
    records = [boards.render(raw, first + i + 1) for i, raw in enumerate(raws) if raw != "null"]
    return {"records": records, "next_cursor": str(first + limit) if more else None}
