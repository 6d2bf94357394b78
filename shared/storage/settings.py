"""Settings of a player or a server: one Redis hash of key -> JSON text per owner.

The three settings operations of each owner kind are thin wrappers around these helpers, so
players and servers follow exactly the same rules: a value is any JSON (not null) of at most
SETTINGS_VALUE_MAX bytes (checked by the field declaration), an owner holds at most
SETTINGS_KEYS_MAX keys, and replacing an existing key is always allowed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from shared import lua
from shared.errors import TooManySettings
from shared.redis_conn import Lua
from shared.schema import SETTING_KEY, Json, Str

if TYPE_CHECKING:  # annotations only (dispatch imports storage)
    from shared.dispatch import Ctx

KEY = Str("key", where="path", pattern=SETTING_KEY, doc="setting key")
VALUE = Json("value", max_bytes="settings_value_max",
             doc="any JSON value except null, at most SETTINGS_VALUE_MAX bytes serialized")

# KEYS[1] settings hash; ARGV: field, JSON text, max keys. 1 stored, 0 refused (too many keys).
SET = Lua(lua.HSET_CAPPED
          + "return hset_capped(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]))")


def render(raw: dict[str, str]) -> dict[str, Any]:
    """A settings hash as callers see it: ``{settings: {key: value}}``."""
    return {"settings": {k: json.loads(v) for k, v in sorted(raw.items())}}


def put(ctx: Ctx, hash_key: str, key: str, value: Any) -> dict[str, Any]:
    """Store one setting atomically with the key-count check. One round trip.

    Returns ``{key, value}``; TooManySettings when a new key would pass the cap.
    """
    text = json.dumps(value, separators=(",", ":"))
    limit = ctx.config.settings_keys_max
    if not SET(ctx.redis, [hash_key], [key, text, limit]):
        raise TooManySettings(f"at most {limit} settings; delete one first")
    return {"key": key, "value": value}


def remove(ctx: Ctx, hash_key: str, key: str) -> None:
    """Delete one setting; deleting an absent key is not an error. One round trip."""
    ctx.redis.hdel(hash_key, key)
