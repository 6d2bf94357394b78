from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.registry import PLAYER, operation
from shared.schema import PLAYER_PATH_NAME
from shared.storage import export


@operation("player.export", "GET", "/v1/players/{name}/export", auth=PLAYER, owner="name",
           fields=(PLAYER_PATH_NAME,), aliases=("EXPORT",),
           example={"request": {"name": "alice"},
                    "response": {"exported_at": 1717003600,
                                 "account": {"id": "w2k7r9d1x5qa", "name": "alice",
                                             "created": 1717000000, "last_seen": 1717003500,
                                             "server": "k3x9q2w7m1ab", "clan": None},
                                 "settings": {"crosshair": "dot", "hud.scale": 1.25},
                                 "records": [{"board": "ctf.ac_desert", "season": None,
                                              "rank": 1, "score": 7, "meta": {"flags": 7},
                                              "server": "k3x9q2w7m1ab", "at": 1717001800.5}],
                                 "mail": [{"id": "m4t8z1c6v0bn", "from": "bob",
                                           "subject": "hi", "body": "gg",
                                           "at": 1717000600.5, "read": False}],
                                 "clan": None,
                                 "sessions": [{"id": "3f9a0c1d5e7b2a48",
                                               "created": 1717000000,
                                               "last_used": 1717003600,
                                               "expires_at": 1719592000, "current": True}],
                                 "bans": [], "audit": [], "blocked": []}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Everything stored about the calling player, as one JSON document (their data export).

    ``account`` (``{id, name, created, last_seen, server, clan}``: no password hash; ``server``
    the server they are online on, ``clan`` the lowercase tag their account names),
    ``settings``, ``records`` (each board's current
    season and every past season still kept: ``season`` is null on a board without seasons),
    ``mail`` (the whole mailbox with bodies, newest first; exporting marks nothing read),
    ``clan``, ``sessions`` (as ``session.list``: no token), ``bans`` naming them and the
    ``audit`` entries made by them or naming them, and the senders they ``blocked``
    (``mail.block``). Mail they sent lives in its recipients'
    mailboxes and is theirs. No secret is in it.

    Errors:
    - ``not_found`` (404): the player no longer exists.

    Internals:
    Reads only, group by group (``shared/storage/export.py``): the player's keys, the boards'
    meta, their records, the clan, then the whole audit log in batches of 1,000 (a year's worth
    at most; the log has no index by name): several round trips, as an export is rare.
    """
    doc = export.gather(ctx.redis, ctx.config, ctx.caller.lname, ctx.caller.session, ctx.now())
    if doc is None:
        raise NotFound(f"no player named {args['name']}")
    return doc
