from __future__ import annotations

import json
from typing import Any

from shared import keys
from shared.errors import NotFound
from shared.registry import operation
from shared.schema import SERVER_ID, Str
from shared.status import is_live, render


@operation("status.get", "GET", "/v1/status/{id}", aliases=("STATUS",),
           fields=(Str("id", where="path", pattern=SERVER_ID),))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """One server's public status; not_found when its heartbeat lapsed or it is not public."""
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.zscore(keys.status_live(), args["id"])
    pipe.hget(keys.status_data(), args["id"])
    score, raw = pipe.execute()
    data = json.loads(raw) if raw else None
    if not data or not data.get("public") or not is_live(score, ctx):
        raise NotFound(f"no live public server {args['id']}")
    return render(args["id"], data)
