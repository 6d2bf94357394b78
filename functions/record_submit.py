from __future__ import annotations

import json
from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.errors import Forbidden, NotFound
from shared.registry import SERVER, operation
from shared.schema import MAX_SAFE_INT, PLAYER_NAME, Int, Json, Str
from shared.storage import records
from shared.storage.status import cutoff_ms


@operation("record.submit", "POST", "/v1/boards/{board}/records", auth=SERVER,
           aliases=("SUBMIT",),
           fields=(records.BOARD, Str("player", pattern=PLAYER_NAME),
                   Int("score", doc=f"integer, |score| <= {MAX_SAFE_INT}"),
                   Json("meta", required=False, max_bytes="record_meta_max",
                        doc="any JSON, at most RECORD_META_MAX bytes")),
           example={"request": {"board": "ctf.ac_desert", "player": "alice", "score": 7,
                                "meta": {"flags": 7, "frags": 31}},
                    "response": {"rank": 1, "score": 7, "improved": True}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Submit a player's score on a board; the player must be online on the calling server.

    The board's operator decides what is kept:
    - ``best`` keeps the better of the old and new score (by the board's order);
    - ``set`` replaces it;
    - ``incr`` adds to it (at most 9007199254740991);
    - ``decr`` subtracts, never below 0 (a first ``decr`` counts from 0).

    When the kept score changes, the record (score, ``meta`` or null, this server, the time) is
    replaced and ranks after older records of the same score; otherwise the old record stays as it
    was. Returns the player's ``rank`` (1 is the best), the kept ``score``, and ``improved``: true
    for a first record or a better score. A record that takes #1 from another player (or is a
    board's first) is a ``record.top`` webhook event.

    Errors:
    - ``not_found`` (404): the board does not exist, or no player has this name.
    - ``forbidden`` (403): the player is not online on this server, or this server's heartbeat
      lapsed.
    - ``too_large`` (413): ``meta`` is longer than RECORD_META_MAX bytes once encoded.

    Internals:
    Ordered steps, each on one hash tag (docs/CLUSTER.md): one pipeline reads the account (adding
    the board to the player's board set, an index written as a superset) and the heartbeat (the
    checks); then one script writes the board, with the record.top event in the board's outbox.
    """
    board, lname, server_id = args["board"], args["player"].lower(), ctx.caller.id
    at_ms = ctx.now_ms()
    member = records.member(at_ms, lname)
    event = {"meta": args.get("meta"), "server": server_id, "at": at_ms / 1000}
    head = json.dumps({**event, "member": member})
    pipe = ctx.redis.pipeline(transaction=False)
    records.ENTER(ctx.redis, [keys.player(lname), keys.player_boards(lname)], [board],
                  pipeline=pipe)
    pipe.zscore(keys.status_live(), server_id)
    (name, online_on), beat = pipe.execute()
    if not name:
        raise NotFound(f"no player named {args['player']}")
    if online_on != server_id or beat is None or beat < cutoff_ms(ctx):
        raise Forbidden(f"player {args['player']} is not online on this server")
    result = records.SUBMIT(
        ctx.redis, [*records.board_keys(board, at_ms / 1000), keys.board_outbox(board)],
        [lname, args["score"], head, member, MAX_SAFE_INT, server_id, cutoff_ms(ctx), board,
         json.dumps(event), name])
    if not result:
        raise records.no_board(board)
    rank, value, improved = result
    return {"rank": rank, "score": int(value), "improved": bool(improved)}
