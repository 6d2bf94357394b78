from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.registry import operation
from shared.storage import records


@operation("board.list", "GET", "/v1/boards", aliases=("BOARDS",),
           example={"request": {},
                    "response": {"boards": [{"board": "ctf.ac_desert", "order": "desc",
                                             "operator": "best"}]}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Every leaderboard, with its order and operator, sorted by board id.

    Internals:
    Reads the board index, then each board's meta in one pipeline: two round trips. An id in
    the index whose board was never written (a create that stopped half-way) is left out.
    """
    return {"boards": records.listing(ctx.redis)}
