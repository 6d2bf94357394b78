"""Player helpers shared by several operations."""

from __future__ import annotations

from typing import Any

from shared import keys
from shared.errors import NotFound
from shared.schema import PLAYER_NAME, Str
from shared.status import is_live

NAME = Str("name", where="path", pattern=PLAYER_NAME, doc="player name (case-insensitive)")
PASSWORD_MIN, PASSWORD_MAX = 6, 128


def require(acct: dict[str, str] | None, name: str) -> dict[str, str]:
    """The account hash, or NotFound naming the player."""
    if not acct or "id" not in acct:
        raise NotFound(f"no player named {name}")
    return acct


def public(acct: dict[str, str], live_score: float | None, ctx: Any) -> dict[str, Any]:
    """The public profile: ``online`` only while the player's server is live."""
    server = acct.get("server") or None
    online = bool(server and is_live(live_score, ctx))
    return {"id": acct["id"], "name": acct["name"], "created": int(acct["created"]),
            "last_seen": int(acct["last_seen"]) if acct.get("last_seen") else None,
            "online": online, "server": server if online else None}


def lkey(name: str) -> str:
    """The account key of a player name, any case."""
    return keys.player(name.lower())
