from __future__ import annotations

from typing import Any

from functions.mod_build_set import SHA1_PATH
from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.registry import ADMIN, operation
from shared.storage import modbuilds


@operation("mod.build.delete", "DELETE", "/v1/mod/builds/{sha1}", auth=ADMIN, audit="sha1",
           fields=(SHA1_PATH,),
           example={"request": {"sha1": "3f786850e387550fdab836ed7e6dc881de23001b"},
                    "response": None})
def handler(ctx: Ctx, args: dict[str, Any]) -> None:
    """Forget a known build of the (server)² core (admin). Answers 204.

    The UDP verify then answers ``unknown`` for its checksum; when it was the newest, the build
    set before it becomes the newest.

    Errors:
    - ``not_found`` (404): no build has this checksum.
    """
    args["sha1"] = sha1 = args["sha1"].lower()  # the audit entry names the stored form
    if not modbuilds.remove(ctx.redis, sha1):
        raise NotFound(f"no known build with checksum {sha1}")
