from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.errors import InvalidInput
from shared.registry import SERVER, operation
from shared.schema import PLAYER_NAME, Str
from shared.storage import bans


def _fields(args: dict[str, Any]) -> list[str]:
    player, ip = args.get("player"), args.get("ip")
    return bans.check_fields(player.lower() if player else None,
                             bans.address(ip) if ip else None)


def reads(pipe: Any, args: dict[str, Any], server_id: str) -> None:  # noqa: ARG001
    try:
        fields = _fields(args)
    except InvalidInput:
        fields = []  # the handler reports it, once the caller is known
    bans.queue_check(pipe, fields or ["-"])


@operation("ban.check", "GET", "/v1/bans/check", auth=SERVER, prefetch=reads,
           fields=(Str("player", where="query", required=False, pattern=PLAYER_NAME),
                   Str("ip", where="query", required=False, max_len=64,
                       doc="the player's address as the game server sees it")),
           example={"request": {"player": "alice", "ip": "203.0.113.7"},
                    "response": {"banned": True,
                                 "bans": [{"id": "b7n2q4x8r1zc", "player": "alice", "ip": None,
                                           "reason": "wallhack", "scope": "global",
                                           "by": "admin", "at": 1717000000,
                                           "expires_at": 1717086400}]}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Whether a player or an address is banned on the calling server, and by which bans.

    Give ``player``, ``ip`` or both; a ban applies when either matches. An IPv6 address that
    carries an IPv4 one (mapped ``::ffff:a.b.c.d``, compatible ``::a.b.c.d``, NAT64
    ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo) is checked as that IPv4 address. Only bans
    in force on this server count: global ones and this server's own; a ban stops applying at its
    ``expires_at``.

    Errors:
    - ``invalid_input`` (400): neither ``player`` nor ``ip``; a malformed ``ip``.

    Internals:
    One HMGET of the ban index (the player's field, the address's network at every prefix
    length from /16 or /48, and the field of the wider ranges), sent with the credential check:
    one round trip in all.
    """
    if not args.get("player") and not args.get("ip"):
        raise InvalidInput("player", "give a player, an ip, or both")
    addr = bans.address(args["ip"]) if args.get("ip") else None  # malformed: reported here
    (raws,) = ctx.fetch(reads, args)
    found = bans.applying(raws, ctx.caller.id, ctx.now(), addr)
    return {"banned": bool(found), "bans": found}
