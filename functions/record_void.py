from __future__ import annotations

from typing import Any

from shared.errors import NotFound
from shared.registry import ADMIN, operation
from shared.schema import PLAYER_PATH_NAME as NAME
from shared.schema import Str
from shared.storage import records as boards


@operation("record.void", "DELETE", "/v1/boards/{board}/records/{name}", auth=ADMIN,
           audit=("board", "name"),
           fields=(boards.BOARD, NAME,
                   Str("reason", where="query", min_len=1, max_len=200,
                       doc="why the record is voided (kept in the audit log)")),
           example={"request": {"board": "ctf.ac_desert", "name": "alice",
                                "reason": "speedhack in the recorded game"},
                    "response": None})
def handler(ctx: Any, args: dict[str, Any]) -> None:
    """Void a player's record on a board (admin): it leaves the ranking at once.

    The players below move up one rank. The player may set a new record later, as anyone.
    The void, with its ``reason``, is in the audit log. Answers 204.

    Errors:
    - ``not_found`` (404): no board has this id, or the player has no record on it.

    Internals:
    One script on the board's keys removes the record and its ranking entry. The board stays in
    the player's board set (an index read as a superset: record.of_player skips boards where
    the player has no record).
    """
    board, lname = args["board"], args["name"].lower()
    got = boards.REMOVE(ctx.redis, boards.board_keys(board, ctx.now()), [lname])
    if got is None:
        raise boards.no_board(board)
    if not got:
        raise NotFound(f"{args['name']} has no record on {board}")
    return None
