from __future__ import annotations

import json
from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.registry import operation
from shared.schema import SERVER_PATH_ID
from shared.storage.status import is_live, render


@operation("status.get", "GET", "/v1/status/{id}", aliases=("STATUS",),
           fields=(SERVER_PATH_ID,),
           example={"request": {"id": "k3x9q2w7m1ab"},
                    "response": {"id": "k3x9q2w7m1ab", "name": "Desert CTF #1",
                                 "host": "ac.example.org", "port": 28763, "map": "ac_desert",
                                 "mode": "ctf", "players": ["alice", "bob"], "max_players": 16,
                                 "version": "1.3.0", "public": True, "updated": 1717000000.25,
                                 "player_count": 2}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """One server's public status.

    Errors:
    - ``not_found`` (404): no live public server has this id (it never sent a heartbeat, its last
      one is older than STATUS_TTL seconds, or its status is not public).
    """
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.zscore(keys.status_live(), args["id"])
    pipe.hget(keys.status_data(), args["id"])
    score, raw = pipe.execute()
    data = json.loads(raw) if raw else None
    if not data or not data.get("public") or not is_live(score, ctx):
        raise NotFound(f"no live public server {args['id']}")
    return render(args["id"], data)
