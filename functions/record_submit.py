from __future__ import annotations

import json
from typing import Any

from shared import boards, keys
from shared.errors import Forbidden, NotFound
from shared.registry import SERVER, operation
from shared.schema import MAX_SAFE_INT, PLAYER_NAME, Int, Json, Str
from shared.status import cutoff_ms


@operation("record.submit", "POST", "/v1/boards/{board}/records", auth=SERVER,
           aliases=("SUBMIT",),
           fields=(boards.BOARD, Str("player", pattern=PLAYER_NAME),
                   Int("score", doc=f"integer, |score| <= {MAX_SAFE_INT}"),
                   Json("meta", required=False, max_bytes="record_meta_max",
                        doc="any JSON, at most RECORD_META_MAX bytes")))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Submit a player's score on a board, from the server the player is online on.

    The board's operator decides the stored value: ``best`` keeps the better of old and new (by
    the board's order), ``set`` replaces, ``incr`` adds (saturating at 2**53-1), ``decr``
    subtracts and floors at 0 (a first ``decr`` counts from 0). When the value changes, the new
    record (value, ``meta`` as sent or null, this server, ``at`` now) replaces the old one and
    ranks after earlier records of the same value; when it does not change, the old record and
    its time stay. Adds the board to the player's board set. Returns ``{rank, score, improved}``
    (``improved``: first record, or the value got better in the board's order). Raises
    not_found (404) for an unknown board or player, forbidden (403) when the player is not
    online on this server or this server's heartbeat lapsed. One script (one round trip) checks,
    writes and adds the board to the player's set atomically.
    """
    board, lname, server_id = args["board"], args["player"].lower(), ctx.caller.id
    at_ms = ctx.now_ms()
    member = boards.member(at_ms, lname)
    head = json.dumps({"meta": args.get("meta"), "server": server_id, "at": at_ms / 1000,
                       "member": member})
    result = boards.SUBMIT(
        ctx.redis, [*boards.board_keys(board), keys.player(lname), keys.status_live(),
                    keys.player_boards(lname)],
        [lname, args["score"], head, member, MAX_SAFE_INT, server_id, cutoff_ms(ctx), board])
    if not result:
        raise boards.no_board(board)
    if result == -1:
        raise NotFound(f"no player named {args['player']}")
    if result == -2:
        raise Forbidden(f"player {args['player']} is not online on this server")
    rank, value, improved = result
    return {"rank": rank, "score": int(value), "improved": bool(improved)}
