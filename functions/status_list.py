from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.registry import operation
from shared.storage.status import live_servers


@operation("status.list", "GET", "/v1/status", aliases=("SERVERS", "LIST"),
           example={"request": {},
                    "response": {"servers": [{"id": "k3x9q2w7m1ab", "name": "Desert CTF #1",
                                              "host": "ac.example.org", "port": 28763,
                                              "map": "ac_desert", "mode": "ctf",
                                              "players": ["alice", "bob"], "max_players": 16,
                                              "version": "1.3.0", "public": True,
                                              "updated": 1717000000.25, "player_count": 2}]}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """The public server list: every live server whose status is public.

    Busiest servers first (then by name). A server is listed while its heartbeats keep coming
    (at most STATUS_TTL seconds apart); ``updated`` is its last heartbeat (unix seconds).

    Internals:
    One script reads the live index and the status hash.
    """
    servers = [s for s in live_servers(ctx) if s.get("public")]
    servers.sort(key=lambda s: (-s["player_count"], s["name"].lower()))
    return {"servers": servers}
