from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.registry import ADMIN, operation
from shared.storage import modbuilds


@operation("mod.build.list", "GET", "/v1/mod/builds", auth=ADMIN,
           example={"request": {},
                    "response": {"builds": [{"sha1": "3f786850e387550fdab836ed7e6dc881de23001b",
                                             "version": "9.0.0", "at": 1717000000.0}]}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Every known build of the (server)² core, newest first (admin).

    The newest is the build set last with ``mod.build.set``; its version is what
    ``/serversquaredmodification/latest.txt`` serves.

    Internals:
    One read of the ``{mod}`` builds hash.
    """
    return {"builds": modbuilds.entries(ctx.redis)}
