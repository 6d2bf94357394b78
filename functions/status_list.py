from __future__ import annotations

from typing import Any

from shared.registry import operation
from shared.status import live_servers


@operation("status.list", "GET", "/v1/status", aliases=("SERVERS", "LIST"))
def handler(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """The public server list: live servers with ``public: true``, with player counts.

    One round trip (a script over the live index and the heartbeat hash).
    """
    servers = [s for s in live_servers(ctx) if s.get("public")]
    servers.sort(key=lambda s: (-s["player_count"], s["name"].lower()))
    return {"servers": servers}
