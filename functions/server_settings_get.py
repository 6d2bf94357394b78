from __future__ import annotations

from typing import Any

from shared import keys, settings
from shared.registry import SERVER, operation
from shared.schema import SERVER_ID, Str


def reads(pipe: Any, args: dict[str, Any], who: str) -> None:  # noqa: ARG001
    pipe.hgetall(keys.server_settings(args["id"]))


@operation("server.settings.get", "GET", "/v1/servers/{id}/settings", auth=SERVER, owner="id",
           fields=(Str("id", where="path", pattern=SERVER_ID),), prefetch=reads)
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Every setting of the calling server: ``{settings: {key: value}}`` (empty when none).

    Only that server may read them (403 for others, admin included). The read travels with
    the credential check: one round trip in all.
    """
    (raw,) = ctx.fetch(reads, args)
    return settings.render(raw)
