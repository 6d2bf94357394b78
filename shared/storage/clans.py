"""Clans and protected names: storage, the membership rule, and reading tags out of nicknames.

A clan is its own group ``{clan:<lowercase tag>}``: the record (tag, name, owner as a lowercase
name, created), the member index (zset lname -> joined ms) and the invitations (zset lname ->
invited ms) with the invited account's id (hash lname -> id: an invitation is for that account,
not for whoever registers the name later). A player's clan is the ``clan`` field of their
account (``{p:<lname>}``), claimed there atomically, compare-and-set, so a player is in at most
one clan. The truth is both halves together: a player is a member of clan T while their account
says T AND T's member index holds them. Joining writes the index entry and claims the account
field in one pipeline (index first); leaving or deleting drops the index entry (or the clan),
which ends the membership at once; an account field left pointing at a clan that no longer lists
the player means no clan, and is overwritten at the next create or accept. No script spans two
groups.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from shared import keys
from shared.redis_conn import Lua

TAG = r"[A-Za-z0-9_.-]{2,7}"
_TAG = re.compile(TAG)
_BRACKETS = re.compile(r"^[\[(]([^\])]*)[\])]")

# KEYS: clan, members, invites, invited ids. ARGV: tag (display), name, owner lname, now (ms).
# Returns 1 when created, 0 when the tag is taken.
CREATE = Lua("""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('HSET', KEYS[1], 'tag', ARGV[1], 'name', ARGV[2], 'owner', ARGV[3],
           'created', math.floor(tonumber(ARGV[4]) / 1000))
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
return 1""")

# KEYS: account. ARGV: expected clan ('' = none), new clan ('' = none). Compare-and-set of the
# account's clan field: 1 done, 0 it held something else, -1 no such account.
CLAIM = Lua("""
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if (redis.call('HGET', KEYS[1], 'clan') or '') ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], 'clan')
else redis.call('HSET', KEYS[1], 'clan', ARGV[2]) end
return 1""")

# KEYS: clan, members, invites, invited ids. ARGV: caller lname, invitee lname, now (ms), most
# members, the invitee's account id. Returns {code, tag}: -1 no clan, -2 caller not the owner,
# -3 full, 2 already a member, 1 invited.
INVITE = Lua("""
local c = redis.call('HMGET', KEYS[1], 'tag', 'owner')
if not c[1] then return {-1, ''} end
if c[2] ~= ARGV[1] then return {-2, c[1]} end
if redis.call('ZSCORE', KEYS[2], ARGV[2]) then return {2, c[1]} end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return {-3, c[1]} end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[2], ARGV[5])
return {1, c[1]}""")

# KEYS: clan, members, invites, invited ids. ARGV: lname, now (ms), most members, account id.
# Returns {code, tag}: -1 no clan, -2 not invited (or the invitation was for an account of
# that name since deleted: then it is withdrawn), -3 full, 2 already listed, 1 joined. An
# invitation with no id recorded (made before ids were) holds for the name.
ACCEPT = Lua("""
local tag = redis.call('HGET', KEYS[1], 'tag')
if not tag then return {-1, ''} end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return {2, tag} end
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then return {-2, tag} end
local invited = redis.call('HGET', KEYS[4], ARGV[1])
if invited and invited ~= ARGV[4] then
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[1])
  return {-2, tag}
end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return {-3, tag} end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return {1, tag}""")

# KEYS: clan, members, invites, invited ids. ARGV: caller lname, member lname.
# -1 no clan, -2 not allowed (neither the owner nor the member), -3 the owner cannot leave,
# 0 neither a member nor invited, 1 removed.
REMOVE = Lua("""
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return -1 end
if ARGV[1] ~= owner and ARGV[1] ~= ARGV[2] then return -2 end
if ARGV[2] == owner then return -3 end
local n = redis.call('ZREM', KEYS[2], ARGV[2]) + redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
return n > 0 and 1 or 0""")

# KEYS: clan, members, invites, invited ids. ARGV: caller lname ('' = the admin).
# -1 no clan, -2 not the owner, 1 deleted.
DELETE = Lua("""
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return -1 end
if ARGV[1] ~= '' and ARGV[1] ~= owner then return -2 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return 1""")

# KEYS: clan, members. ARGV: new owner lname, 1 when their account names this clan.
# Returns {code, tag}: -1 no clan, -2 not a member, 1 done.
TRANSFER = Lua("""
local tag = redis.call('HGET', KEYS[1], 'tag')
if not tag then return {-1, ''} end
if ARGV[2] ~= '1' or not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return {-2, tag} end
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
return {1, tag}""")

# KEYS: clan, members, invites, invited ids. ARGV: lname. A deleted player leaves: an owner's
# clan passes to the member who joined earliest, or is deleted when none is left. Returns
# 2 deleted, 1 left, 0 was not listed.
LEAVE = Lua("""
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 1 end
local heir = redis.call('ZRANGE', KEYS[2], 0, 0)
if #heir == 0 then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
  return 2
end
redis.call('HSET', KEYS[1], 'owner', heir[1])
return 1""")


def group(ltag: str) -> list[str]:
    """The clan's record, members, invitations and invited ids keys, in the order the scripts
    take them."""
    return [keys.clan(ltag), keys.clan_members(ltag), keys.clan_invites(ltag),
            keys.clan_invite_ids(ltag)]


# Look-alike letters folded to the Latin letter they pass for (after lowercasing): Cyrillic and
# Greek letters that render like Latin ones, and a few IPA/dotless forms. A small table, not
# Unicode's whole confusables list: enough that ``[АСЕ]x`` (Cyrillic) reads as ``[ACE]x``.
_CONFUSABLES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "і": "i", "ї": "i", "ј": "j", "к": "k", "м": "m",
    "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "һ": "h",
    "ԁ": "d", "ԛ": "q", "ԝ": "w", "ү": "y", "ӏ": "l", "α": "a", "β": "b", "ε": "e", "ζ": "z",
    "η": "h", "ι": "i", "κ": "k", "μ": "m", "ν": "n", "ο": "o", "ρ": "p", "τ": "t", "υ": "y",
    "χ": "x", "ı": "i", "ɑ": "a", "ɡ": "g"})
_SPACES = re.compile(r"\s+")


def fold(nick: str) -> str:
    """A nickname as the protection judges it: NFKC (fullwidth ``ＡＣＥ`` and other
    compatibility forms become ``ACE``), lowercase, look-alike letters folded to Latin."""
    return unicodedata.normalize("NFKC", nick).lower().translate(_CONFUSABLES)


def tags_in(nick: str) -> list[str]:
    """The lowercase clan tags a nickname carries in one of the forms ``TAG|x``, ``[TAG]x``,
    ``x|TAG``, ``(TAG)x`` (each a well-formed tag), in that order, each once. The nickname is
    folded first (:func:`fold`) and spaces around or inside a tag do not count: ``[ ACE]x``,
    ``ACE |x``, ``[ＡＣＥ]x`` and ``[АСЕ]x`` (Cyrillic) all carry ``ace``."""
    nick = fold(nick).strip()
    if not nick:
        return []
    bracket = _BRACKETS.match(nick)
    pair = (nick[0], nick[bracket.end() - 1]) if bracket else None
    found = [nick.split("|", 1)[0] if "|" in nick else "",
             bracket.group(1) if bracket and pair == ("[", "]") else "",
             nick.rsplit("|", 1)[1] if "|" in nick else "",
             bracket.group(1) if bracket and pair == ("(", ")") else ""]
    out: list[str] = []
    for tag in found:
        low = _SPACES.sub("", tag)
        if _TAG.fullmatch(low) and low not in out:
            out.append(low)
    return out


def member_of(pointer: str | None, listed: Any, ltag: str) -> bool:
    """The membership rule: the account names the clan and the clan's index holds the player."""
    return pointer == ltag and listed is not None


def listing(r: Any, ltag: str) -> dict[str, Any] | None:
    """``{tag, name, owner, members, created}`` or None: two round trips (the clan, then the
    members' accounts, which filter the index)."""
    pipe = r.pipeline(transaction=False)
    pipe.hgetall(keys.clan(ltag))
    pipe.zrange(keys.clan_members(ltag), 0, -1)
    clan, listed = pipe.execute()
    if not clan:
        return None
    pipe = r.pipeline(transaction=False)
    for lname in listed:
        pipe.hmget(keys.player(lname), "name", "clan")
    names = {lname: name for lname, (name, pointer) in zip(listed, pipe.execute(), strict=True)
             if name and pointer == ltag}
    owner = clan["owner"]
    return {"tag": clan["tag"], "name": clan["name"], "owner": names.get(owner, owner),
            "members": list(names.values()), "created": int(clan["created"])}


def still_member(r: Any, lname: str, pointer: str | None) -> bool:
    """Whether the clan an account names still lists the player (one round trip; none when
    the account names no clan)."""
    if not pointer:
        return False
    return r.zscore(keys.clan_members(pointer), lname) is not None
