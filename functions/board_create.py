from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx, Outcome
from shared.errors import BoardExists
from shared.redis_conn import Lua
from shared.registry import ADMIN, operation
from shared.schema import Enum
from shared.storage import seasons
from shared.storage.records import BOARD, OPERATORS, ORDERS

# KEYS: meta. ARGV: id, order, operator, created, reset ('' for none). Returns {order, operator,
# created, new (0|1), reset ('' for none)}.
CREATE = Lua("""
local old = redis.call('HMGET', KEYS[1], 'order', 'operator', 'created', 'reset')
if old[1] then return {old[1], old[2], old[3], 0, old[4] or ''} end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'order', ARGV[2], 'operator', ARGV[3],
           'created', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'reset', ARGV[5]) end
return {ARGV[2], ARGV[3], ARGV[4], 1, ARGV[5]}""")


@operation("board.create", "PUT", "/v1/boards/{board}", auth=ADMIN, status=201,
           aliases=("BOARD",), audit="board",
           fields=(BOARD,
                   Enum("order", ORDERS, doc="asc: lower is better; desc: higher is better"),
                   Enum("operator", OPERATORS,
                        doc="best keeps the better, set replaces, incr adds, decr subtracts "
                            "(floors at 0)"),
                   Enum("reset", seasons.RESETS, required=False,
                        doc="start a new season (an empty board) every UTC day, week (Monday "
                            "00:00) or month; absent: one endless season")),
           example={"request": {"board": "ctf.ac_desert", "order": "desc", "operator": "best"},
                    "response": {"board": "ctf.ac_desert", "order": "desc", "operator": "best",
                                 "created": 1717000000}})
def handler(ctx: Ctx, args: dict[str, Any]) -> Outcome:
    """Create a leaderboard (admin); repeating the same settings is harmless.

    ``order`` says which scores are better; ``operator`` how a new score combines with the player's
    current one (see ``record.submit``). Answers 201 with the new board, or 200 with the existing
    board when one with the same settings exists. The board is listed by ``board.list``.

    With ``reset``, the board has seasons: at each UTC midnight (``daily``), Monday 00:00
    (``weekly``) or first of the month (``monthly``) it starts empty, and the season that ended
    stays readable (``board.seasons``, ``season.records``). Season 0 is the one the board was
    created in. The answer then includes ``reset``.

    Errors:
    - ``board_exists`` (409): the board exists with another order, operator or reset (changing
      any would corrupt its ranking).

    Internals:
    Adds the id to the board index (``board.list``) and, with ``reset``, to the seasons' due
    index (both indexes written as supersets, in one pipeline), then one script stores the
    board's meta hash (id, order, operator, created, reset): two round trips.
    """
    board, order, operator = args["board"], args["order"], args["operator"]
    reset, now = args.get("reset") or "", ctx.now()
    pipe = ctx.redis.pipeline(transaction=False)  # first: indexes are supersets of the boards
    pipe.sadd(keys.boards_index(), board)
    if reset:
        pipe.zadd(keys.seasons_due(), {board: seasons.due_at(reset, now, 0)}, nx=True)
    pipe.execute()
    old_order, old_op, created, new, old_reset = CREATE(
        ctx.redis, [keys.board(board)], [board, order, operator, int(now), reset])
    if (old_order, old_op, old_reset) != (order, operator, reset):
        resets = f", reset {old_reset}" if old_reset else ", without reset" if reset else ""
        raise BoardExists(f"board {board} exists with order {old_order} and operator "
                          f"{old_op}{resets}")
    body = {"board": board, "order": order, "operator": operator, "created": int(created)}
    if reset:
        body["reset"] = reset
    return Outcome(201 if new else 200, body)
