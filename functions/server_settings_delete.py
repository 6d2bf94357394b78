from __future__ import annotations

from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.registry import SERVER, operation
from shared.schema import SERVER_PATH_ID
from shared.storage import settings


@operation("server.settings.delete", "DELETE", "/v1/servers/{id}/settings/{key}", auth=SERVER,
           owner="id", fields=(SERVER_PATH_ID, settings.KEY),
           example={"request": {"id": "k3x9q2w7m1ab", "key": "motd"}, "response": None})
def handler(ctx: Ctx, args: dict[str, Any]) -> None:
    """Delete one setting of the calling server.

    Answers 204 also when the setting was not there, so repeating the call is harmless.
    """
    settings.remove(ctx, keys.server_settings(args["id"]), args["key"])
