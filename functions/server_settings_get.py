from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.registry import SERVER, operation
from shared.schema import SERVER_PATH_ID
from shared.storage import settings


def reads(pipe: Any, args: dict[str, Any], who: str) -> None:
    pipe.hgetall(keys.server_settings(args["id"]))


@operation("server.settings.get", "GET", "/v1/servers/{id}/settings", auth=SERVER, owner="id",
           fields=(SERVER_PATH_ID,), prefetch=reads,
           example={"request": {"id": "k3x9q2w7m1ab"},
                    "response": {"settings": {"motd": "Welcome to Desert CTF!"}}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """All of the calling server's settings.

    Returns ``{"settings": {key: value}}``; empty when none are set. Only that server may read them
    (not even the admin).

    Internals:
    The read travels with the credential check: one round trip in all.
    """
    (raw,) = ctx.fetch(reads, args)
    return settings.render(raw)
