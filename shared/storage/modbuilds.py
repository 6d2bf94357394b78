"""Known builds of the (server)² core: SHA-1 of the core file -> version (docs/API.md).

The admin registers them (``mod.build.set``/``list``/``delete``, the CLI's ``mod build``); the
relay's legacy UDP verify answers a checksum with its version, and the web's
``/serversquaredmodification/latest.txt`` the newest version. All in ``{mod}``: one hash of
``sha1 -> {version, at, seq}`` and a counter. "Newest" is the build set last (the highest
``seq``): registering a build again, or re-registering an old one, makes it the newest.
Builds are made by the admin, so they are few; reads take the whole hash (one round trip).
"""

from __future__ import annotations

import json
from typing import Any

from shared import keys
from shared.redis_conn import Lua

SHA1 = r"[0-9a-fA-F]{40}"
# printable ASCII, no leading or trailing space; at most VERSION_MAX characters, so an answer
# to a UDP verify is at most 32 bytes (docs/RELAY.md "The released core's UDP verify")
VERSION = r"[!-~](?:[ -~]*[!-~])?"
VERSION_MAX = 32

# KEYS: builds hash, seq counter. ARGV: sha1, version, at (unix ms). 1: a new build, 0: replaced.
SET = Lua("""
local seq = redis.call('INCR', KEYS[2])
return redis.call('HSET', KEYS[1], ARGV[1],
                  cjson.encode({version = ARGV[2], at = tonumber(ARGV[3]), seq = seq}))""")


def put(r: Any, sha1: str, version: str, now_ms: int) -> bool:
    """Register (or replace) one build, making it the newest; True when it is new. One round
    trip."""
    return bool(SET(r, [keys.mod_builds(), keys.mod_build_seq()], [sha1, version, now_ms]))


def remove(r: Any, sha1: str) -> bool:
    """Forget one build; False when it was not known. One round trip."""
    return bool(r.hdel(keys.mod_builds(), sha1))


def entries(r: Any) -> list[dict[str, Any]]:
    """Every build, newest first: ``[{sha1, version, at (unix seconds)}]``. One round trip."""
    found = []
    for sha1, raw in r.hgetall(keys.mod_builds()).items():
        try:
            data = json.loads(raw)
            found.append((int(data["seq"]), {"sha1": sha1, "version": str(data["version"]),
                                             "at": int(data["at"]) / 1000}))
        except (ValueError, KeyError, TypeError):
            continue  # not written by put: skipped, never an error to a caller
    return [entry for _, entry in sorted(found, key=lambda f: f[0], reverse=True)]


def versions(r: Any) -> dict[str, str]:
    """sha1 -> version of every build (the UDP verify's table). One round trip."""
    return {e["sha1"]: e["version"] for e in entries(r)}


def latest(r: Any) -> str | None:
    """The newest build's version, or None when none is registered. One round trip."""
    found = entries(r)
    return found[0]["version"] if found else None
