from __future__ import annotations

import re
from typing import Any

from shared import keys
from shared.dispatch import Ctx
from shared.registry import SERVER, operation
from shared.schema import NICK, PLAYER_NAME, Str
from shared.storage import clans

_NAME = re.compile(PLAYER_NAME)


def reads(pipe: Any, args: dict[str, Any], server_id: str) -> None:  # noqa: ARG001
    """The nick's account (if it can be a name), the player's, and per tag the nick carries the
    clan's display tag and whether it lists the player: one pipeline, at most 10 commands."""
    nick, player = clans.fold(args["nick"]), (args.get("player") or "").lower()
    pipe.hget(keys.player(nick if _NAME.fullmatch(nick) else ""), "name")
    pipe.hmget(keys.player(player), "name", "server", "clan")
    for ltag in clans.tags_in(nick):
        pipe.hget(keys.clan(ltag), "tag")
        pipe.zscore(keys.clan_members(ltag), player)


@operation("name.check", "GET", "/v1/names/check", auth=SERVER, aliases=("CHECKNAME",),
           prefetch=reads,
           fields=(Str("nick", where="query", min_len=1, max_len=15, pattern=NICK,
                       doc="the in-game name about to be used"),
                   Str("player", where="query", required=False, pattern=PLAYER_NAME,
                       doc="the registered player using it, if any: counts only while online "
                           "on the calling server")),
           example={"request": {"nick": "[ACE]alice", "player": "bob"},
                    "response": {"allowed": False, "reason": "clan_tag", "clan": "ACE"}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """May this nickname be used on the calling server, by this player?

    Not allowed, ``reason: "name_registered"`` (with the ``owner``'s name): the nick is a
    registered player's name (any case), other than ``player``'s. Not allowed, ``reason:
    "clan_tag"`` (with the ``clan`` tag): the nick carries a clan's tag as ``TAG|x``,
    ``[TAG]x``, ``x|TAG`` or ``(TAG)x`` (any case) and ``player`` is not a member of that clan.
    Otherwise allowed. ``player`` counts only while that player is online on the calling server;
    otherwise the nick is judged as used by no registered player. What to do with a refused
    nick (ask to log in, rename, kick) is the game server's choice.

    Look-alikes count as the name or tag they imitate: the nick is compared after Unicode
    NFKC (fullwidth ``ＡＣＥ`` is ``ACE``) and a fold of Cyrillic and Greek letters that look
    Latin (``bоb`` with a Cyrillic o is ``bob``), and spaces around or inside a tag do not
    count (``[ ACE]x`` carries ``ACE``). A nick with an invisible character (zero-width space
    or joiner, word joiner, soft hyphen, byte order mark, any other format character) is
    refused as invalid input.

    Errors:
    - ``invalid_input`` (400): the nick is empty, too long, or holds a control, bidirectional
      formatting or invisible character.

    Internals:
    Every read (the nick's account, the player's account, and for each tag the nick carries the
    clan record and its member index) travels with the credential check: one round trip in all,
    whatever the number of clans.
    """
    got = ctx.fetch(reads, args)
    owner, (pname, pserver, pointer) = got[0], got[1]
    present = pname is not None and pserver == ctx.caller.id
    if owner is not None and not (present and owner.lower() == pname.lower()):
        return {"allowed": False, "reason": "name_registered", "owner": owner}
    for i, ltag in enumerate(clans.tags_in(args["nick"])):
        tag, listed = got[2 + 2 * i], got[3 + 2 * i]
        if tag is not None and not (present and clans.member_of(pointer, listed, ltag)):
            return {"allowed": False, "reason": "clan_tag", "clan": tag}
    return {"allowed": True}
