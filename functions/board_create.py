from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx, Outcome
from shared.errors import BoardExists
from shared.redis_conn import Lua
from shared.registry import ADMIN, operation
from shared.schema import Enum
from shared.storage.records import BOARD, OPERATORS, ORDERS

# KEYS: meta. ARGV: id, order, operator, created. Returns {order, operator, created, new (0|1)}.
CREATE = Lua("""
local old = redis.call('HMGET', KEYS[1], 'order', 'operator', 'created')
if old[1] then return {old[1], old[2], old[3], 0} end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'order', ARGV[2], 'operator', ARGV[3],
           'created', ARGV[4])
return {ARGV[2], ARGV[3], ARGV[4], 1}""")


@operation("board.create", "PUT", "/v1/boards/{board}", auth=ADMIN, status=201,
           aliases=("BOARD",), audit="board",
           fields=(BOARD,
                   Enum("order", ORDERS, doc="asc: lower is better; desc: higher is better"),
                   Enum("operator", OPERATORS,
                        doc="best keeps the better, set replaces, incr adds, decr subtracts "
                            "(floors at 0)")),
           example={"request": {"board": "ctf.ac_desert", "order": "desc", "operator": "best"},
                    "response": {"board": "ctf.ac_desert", "order": "desc", "operator": "best",
                                 "created": 1717000000}})
def handler(ctx: Ctx, args: dict[str, Any]) -> Outcome:
    """Create a leaderboard (admin); repeating the same settings is harmless.

    ``order`` says which scores are better; ``operator`` how a new score combines with the player's
    current one (see ``record.submit``). Answers 201 with the new board, or 200 with the existing
    board when one with the same order and operator exists. The board is listed by
    ``board.list``.

    Errors:
    - ``board_exists`` (409): the board exists with another order or operator (changing either
      would corrupt its ranking).

    Internals:
    Adds the id to the board index (``board.list``), then one script stores the board's meta hash
    (id, order, operator, created): two round trips.
    """
    board, order, operator = args["board"], args["order"], args["operator"]
    ctx.redis.sadd(keys.boards_index(), board)  # first: the index is a superset of the boards
    old_order, old_op, created, new = CREATE(ctx.redis, [keys.board(board)],
                                              [board, order, operator, int(ctx.now())])
    if (old_order, old_op) != (order, operator):
        raise BoardExists(f"board {board} exists with order {old_order} and operator {old_op}")
    body = {"board": board, "order": order, "operator": operator, "created": int(created)}
    return Outcome(201 if new else 200, body)
