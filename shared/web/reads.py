"""The profile page's reads, pipelined: what ``player.get``, ``status.get``,
``record.of_player`` and ``clan.get`` read one after another (5 round trips), read in as few
round trips as the data allows, each command on its own hash tag.

1. the account and the player's board set (one slot);
2. the live server's heartbeat (``{status}``), the clan and its member index (``{c:}``) and
   the player's record on each board (one script per board's slot), in one pipeline;
3. only for a clan member: the members' accounts (``clan.get`` lists a player only while
   their account names the clan).

Answers are shaped as the operations shape them, so the page renders the same. Each round
trip is a :class:`shared.redis_conn.Reads` (a pipeline at a third of redis-py's CPU).
"""

from __future__ import annotations

import json
from typing import Any

from shared import keys
from shared.errors import NotFound
from shared.redis_conn import Reads
from shared.storage import records
from shared.storage.status import render

ACCOUNT = ("id", "name", "created", "last_seen", "server", "clan")


def first(pipe: Any, lname: str) -> None:
    """Queue the first round trip's reads (the account and its board set, the player's own
    slot) on ``pipe`` (a Reads): ``/me`` sends them with the session check
    (shared/web/accounts.py)."""
    pipe.add("HMGET", keys.player(lname), *ACCOUNT)
    pipe.add("SMEMBERS", keys.player_boards(lname))


def profile(r: Any, name: str, now: float, status_ttl: int,
            fetched: list[Any] | None = None) -> tuple[
        dict[str, Any], dict[str, Any] | None, list[dict[str, Any]], dict[str, Any] | None]:
    """(``player.get``, ``status.get`` of the server they are on or None, ``record.of_player``'s
    records, ``clan.get`` or None) for one player: two round trips, three for a clan member;
    one fewer when ``fetched`` holds the replies of :func:`first`'s reads, already made.
    Raises NotFound for no such player."""
    lname = name.lower()
    if fetched is None:
        first(reading := Reads(r), lname)
        fetched = reading.execute()
    values, boards = fetched
    acct = dict(zip(ACCOUNT, values, strict=True))
    if acct["id"] is None:
        raise NotFound(f"no player named {name}")
    server, ltag, boards = acct["server"] or None, acct["clan"] or "", sorted(boards)
    pipe = Reads(r)
    if server:
        pipe.add("ZSCORE", keys.status_live(), server)
        pipe.add("HGET", keys.status_data(), server)
    if ltag:
        pipe.add("HGETALL", keys.clan(ltag))
        pipe.add("ZRANGE", keys.clan_members(ltag), 0, -1)
    for board in boards:
        records.OF_PLAYER(r, records.board_keys(board, now), [lname], pipeline=pipe)
    got = iter(pipe.execute())
    score, beat = (next(got), next(got)) if server else (None, None)
    clan, members = (next(got), next(got)) if ltag else ({}, [])
    held = list(got)

    cutoff = int(now * 1000) - status_ttl * 1000
    online = bool(server and score is not None and float(score) >= cutoff)
    data = json.loads(beat) if online and beat else {}
    public = bool(data.get("public"))  # a private server stays hidden: online, not where
    player = {"id": acct["id"], "name": acct["name"], "created": int(acct["created"]),
              "last_seen": int(acct["last_seen"]) if acct["last_seen"] else None,
              "online": online, "server": server if public else None}
    where = render(server, data) if public else None  # type: ignore[arg-type]
    listed = []
    for board, rec in zip(boards, held, strict=True):
        if rec:
            shown = records.render(rec[1], rec[0])
            del shown["player"]
            listed.append({"board": board, **shown})
    listed.sort(key=lambda rec: rec["board"])
    team = None
    if clan and lname in members:  # a member: the account names the clan, its index holds them
        player["clan"] = clan["tag"]
        pipe = Reads(r)
        for member in members:
            pipe.add("HMGET", keys.player(member), "name", "clan")
        names = {m: shown_name for m, (shown_name, pointer)
                 in zip(members, pipe.execute(), strict=True) if shown_name and pointer == ltag}
        owner = clan["owner"]
        team = {"tag": clan["tag"], "name": clan["name"], "owner": names.get(owner, owner),
                "members": list(names.values()), "created": int(clan["created"])}
    return player, where, listed, team
