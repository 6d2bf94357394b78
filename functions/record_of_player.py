from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.redis_conn import Lua
from shared.registry import operation
from shared.schema import PLAYER_PATH_NAME
from shared.storage import records

# KEYS: account, the player's board set. ARGV: lname, prefix/suffix of a board's rank key and
# of its records key. Returns false for an unknown player, else {board, rank, record JSON, ...}.
# Board keys are built in the script (they span hash tags: split on a Redis Cluster).
OF_PLAYER = Lua("""
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local out = {}
for _, b in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local raw = redis.call('HGET', ARGV[4] .. b .. ARGV[5], ARGV[1])
  if raw then
    local rank = redis.call('ZRANK', ARGV[2] .. b .. ARGV[3], cjson.decode(raw)['member'])
    if rank then out[#out + 1] = b; out[#out + 1] = rank + 1; out[#out + 1] = raw end
  end
end
return out""")


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
    One script (it builds board keys itself: those span hash tags, split on a Redis Cluster).
    """
    lname = args["name"].lower()
    flat = OF_PLAYER(ctx.redis, [keys.player(lname), keys.player_boards(lname)],
                     [lname, *keys.around(keys.board_rank(keys.HOLE)),
                      *keys.around(keys.board_records(keys.HOLE))])
    if flat is None:
        raise NotFound(f"no player named {args['name']}")
    listed = []
    for i in range(0, len(flat), 3):
        rec = records.render(flat[i + 2], flat[i + 1])
        del rec["player"]
        listed.append({"board": flat[i], **rec})
    listed.sort(key=lambda rec: rec["board"])
    return {"records": listed}
