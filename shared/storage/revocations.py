"""Revocations: tell every relay process that a server key or a player's sessions ended.

An operation that ends a credential (``server.rotate_key``, ``server.delete``,
``session.logout``, ``player.password``, ``player.delete``, ``session.login`` past the session
cap) calls :func:`announce` as a step after its own write: ``Ordered.then()`` (the same MULTI
on one Redis, the next round trip on a cluster, where one pipeline's parts on two nodes could
run in either order), or a round trip of its own once the write answered. Each relay reads
the stream with its inboxes and re-checks the credential of the connections that used it;
those that fail end at once with a line saying why (docs/RELAY.md). The entry is a hint, never
trusted alone: a stale or repeated one costs a re-check. A crash between the write and the
announce leaves the connection open until its next command, which re-checks the credential as
every command does.
"""

from __future__ import annotations

from typing import Any

from shared import keys

MAXLEN = 10_000  # entries kept (approximately): a relay reads them within a second
SERVER, PLAYER = "server", "player"


def announce(r: Any, kind: str, who: str, why: str) -> None:
    """One entry (sent, or queued when ``r`` is a pipeline): ``kind`` SERVER (``who`` a server
    id) or PLAYER (a lowercase name); ``why`` one of relay.protocol.REVOKED_WHY's keys."""
    r.xadd(keys.revocations(), {"k": kind, "w": who, "r": why}, maxlen=MAXLEN,
           approximate=True)
