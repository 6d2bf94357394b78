from __future__ import annotations

from typing import Any

from shared import keys
from shared.auth import new_id
from shared.dispatch import Ctx
from shared.errors import Forbidden, InvalidInput, NotFound
from shared.registry import ADMIN, SERVER, operation
from shared.schema import PLAYER_NAME, SERVER_ID, Bool, Int, Str
from shared.storage import bans, limits

TEN_YEARS = 10 * 365 * 86400


@operation("ban.create", "POST", "/v1/bans", auth=ADMIN | SERVER, status=201, aliases=("BAN",),
           audit=("id", "player", "ip"),
           fields=(Str("player", required=False, pattern=PLAYER_NAME,
                       doc="a registered player's name"),
                   Int("duration", required=False, lo=0, hi=TEN_YEARS,
                       doc="seconds; absent or 0 = permanent"),
                   Str("reason", min_len=1, max_len=200, rest=True),
                   Str("ip", required=False, max_len=64,
                       doc="an address or CIDR range: IPv4 /16 or narrower, IPv6 /48 or "
                           "narrower; an IPv6 form that carries IPv4 addresses (mapped, NAT64, "
                           "6to4, ...) is stored as the IPv4 range"),
                   Str("scope", required=False, pattern="global|" + SERVER_ID,
                       doc="global or a server id; default global for the admin, the calling "
                           "server for a server"),
                   Bool("force", required=False, default=False,
                        doc="admin only: allow a range wider than /16 or /48")),
           example={"request": {"player": "alice", "reason": "wallhack", "duration": 86400},
                    "response": {"id": "b7n2q4x8r1zc", "player": "alice", "ip": None,
                                 "reason": "wallhack", "scope": "global", "by": "admin",
                                 "at": 1717000000, "expires_at": 1717086400}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Ban a player, an address or range, or both, everywhere or on one server.

    ``player`` is a registered name, ``ip`` an address or CIDR range; give at least one. A ban
    with both applies when either matches. Without ``duration`` (or with 0) it is permanent.
    Only the admin bans for good: a server's ban without ``duration``, or with a longer one,
    lasts BAN_SERVER_MAX_SECONDS (90 days), and ``expires_at`` says so.
    The admin bans on any ``scope`` (default ``global``); a game server bans on its own scope
    only (its id, the default). Every registered server in scope gets the ban in its inbox at
    once (``type: "ban"``, the ban under ``ban``), pushed live to those connected to a relay
    (event ``ban``, the ban as ``data``). A banned player online on a server in scope is taken
    offline before the answer. A ban on an address alone takes effect at the player's next
    ``presence.join`` with that ``ip``. The ban is in the audit log, and webhooks subscribed
    to ``ban.created`` get it (docs/WEBHOOKS.md).

    Errors:
    - ``invalid_input`` (400): neither ``player`` nor ``ip``; a malformed ``ip``; a range wider
      than /16 (IPv4) or /48 (IPv6) without ``force``.
    - ``forbidden`` (403): a server asking for another scope, or sending ``force``.
    - ``not_found`` (404): no player has the name ``player``; no server has the id ``scope``.
    - ``rate_limited`` (429): a server key made MOD_WRITES_PER_SERVER_MINUTE moderation writes
      (``ban.create``, ``ban.lift``) this minute; retry after ``Retry-After``.

    Internals:
    Checks first (one pipelined read of the account and the scope's server); then the ban, its
    index entries, an outbox entry and the ``ban.created`` event in one ``{bans}`` script; then
    the player's copy and offline mark (``{p:}``) with the inbox delivery (``{msg}``, once per
    ban by a marker) in one pipeline; then the server's player set and the outbox entry. The
    worker redoes the later steps of an outbox entry left behind (shared/storage/bans.py).
    """
    player, ip, caller = args.get("player"), args.get("ip"), ctx.caller
    if not player and not ip:
        raise InvalidInput("player", "give a player, an ip, or both")
    if caller.kind == "server":
        scope = args.get("scope") or caller.id
        if scope != caller.id:
            raise Forbidden("a server may ban on its own scope only (scope: its id)")
        if args["force"]:
            raise Forbidden("only the admin may force a wide range")
    else:
        scope = args.get("scope") or "global"
    net = bans.network(ip) if ip else None
    if net is not None and bans.too_wide(net) and not args["force"]:
        raise InvalidInput("ip", f"{net} is wider than /16 (IPv4) or /48 (IPv6); "
                                 "send force: true to ban it anyway")
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.hget(keys.player(player.lower()) if player else keys.player(""), "name")
    pipe.exists(keys.server(scope))
    limit, now = ctx.config.mod_writes_per_server_minute, ctx.now()
    if caller.kind == "server" and limit:  # the budget's count goes with the checks
        limits.queue_spend(pipe, limits.moderation_key(ctx), 60, now)
    name, server_known, *spent = pipe.execute()
    if spent:
        limits.judge(spent[0], limit, 60, now, limits.MODERATION)
    if player and not name:
        raise NotFound(f"no player named {player}")
    if scope != "global" and not server_known:
        raise NotFound(f"no server with id {scope}")
    by = "admin" if caller.kind == "admin" else caller.id
    duration = args.get("duration") or None
    if caller.kind == "server":  # only the admin bans for good (README "Abuse budgets")
        duration = min(duration or ctx.config.ban_server_max_seconds,
                       ctx.config.ban_server_max_seconds)
    ban = bans.new_ban(new_id(), name, net, args["reason"], scope, by, int(now), duration)
    while not bans.store(ctx.redis, ban, net, int(now * 1000)):
        ban["id"] = new_id()  # a random id already taken: draw again
    bans.announce(ctx.redis, ctx.config, "ban", ban, now)
    return ban
