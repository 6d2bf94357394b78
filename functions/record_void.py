from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.registry import ADMIN, operation
from shared.schema import PLAYER_PATH_NAME as NAME
from shared.schema import Int, Str
from shared.storage import records as boards


@operation("record.void", "DELETE", "/v1/boards/{board}/records/{name}", auth=ADMIN,
           audit=("board", "name", "season"),
           fields=(boards.BOARD, NAME,
                   Str("reason", where="query", min_len=1, max_len=200,
                       doc="why the record is voided (kept in the audit log)"),
                   Int("season", where="query", required=False, lo=0, hi=10**9,
                       doc="a board with seasons: the season (see season.list); absent: the "
                           "current one")),
           example={"request": {"board": "ctf.ac_desert", "name": "alice",
                                "reason": "speedhack in the recorded game"},
                    "response": None})
def handler(ctx: Ctx, args: dict[str, Any]) -> None:
    """Void a player's record on a board (admin): it leaves the ranking at once.

    The players below move up one rank. The player may set a new record later, as anyone.
    The void, with its ``reason``, is in the audit log. Answers 204.

    On a board with seasons it voids the record of the current season, or with ``season`` of
    an ended one still kept (a cheat found after the season ended): the season's ranking and
    its top 3 in ``season.list`` no longer show it. A ``season.ended`` webhook event already
    sent is not sent again.

    Errors:
    - ``not_found`` (404): no board has this id, the player has no record on it (in that
      season), or the season has not begun or is no longer kept.

    Internals:
    One script on the board's keys removes the record and its ranking entry (with ``season``,
    after a read of the board's meta, and re-archiving the season's top 3 in the same script).
    The board stays in the player's board set (an index read as a superset: record.of_player
    skips boards where the player has no record).
    """
    board, lname, now = args["board"], args["name"].lower(), ctx.now()
    season = args.get("season")
    t, ended = (now, False) if season is None else \
        boards.season_time(ctx.redis, board, season, now, ctx.config.seasons_kept)
    if ended:
        got = boards.REMOVE_PAST(ctx.redis, [*boards.board_keys(board, t),
                                             keys.board_seasons(board)], [lname, season])
    else:
        got = boards.REMOVE(ctx.redis, boards.board_keys(board, t), [lname])
    if got is None:
        raise boards.no_board(board)
    if not got:
        where = f" in season {season}" if season is not None else ""
        raise NotFound(f"{args['name']} has no record on {board}{where}")
    return None
