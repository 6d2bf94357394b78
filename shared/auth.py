"""Secrets: password hashing (scrypt), tokens and keys, and resolving a bearer token to a caller.

Token formats carry the kind and the owner, so resolving one is a single Redis read:
- server key: ``s.<server id>.<secret>``; the server hash stores sha256 of the whole key.
- player session: ``p.<base64url(lowercase name)>.<secret>``; the session key is
  ``{p:<name>}:sess:<sha256 of the token>`` with the session TTL.
Secrets are 256 random bits. Only hashes are stored; nothing here logs a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared import keys
from shared.config import Config
from shared.errors import Unauthenticated
from shared.redis_conn import Reads


@dataclass(frozen=True)
class Caller:
    kind: str  # anonymous | player | server | admin
    id: str = ""  # player id or server id
    name: str = ""  # player display name or server name
    session: str = ""  # player callers: sha256 of the session token they used
    # player callers: account fields an operation asked for (Operation.account), read in the
    # same round trip as the session; never rendered
    account: dict[str, str | None] = field(default_factory=dict, repr=False, compare=False)
    # player callers: when the session was last marked used (unix seconds; 0 = not recorded),
    # read with the session, so the web can refresh it without a read of its own
    used: float = field(default=0.0, compare=False)

    @property
    def lname(self) -> str:
        return self.name.lower()

    @property
    def ident(self) -> str:
        """Stable identity for per-caller keys (idempotency)."""
        return f"{self.kind}:{self.id}"


ANONYMOUS = Caller("anonymous")
ADMIN_CALLER = Caller("admin", "admin", "admin")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_id(n: int = 12) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(n))


# --- passwords ------------------------------------------------------------------------------
def hash_password(password: str, log2_n: int) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, log2_n)
    return f"scrypt${log2_n}$8$1${_b64(salt)}${_b64(digest)}"


def verify_password(stored: str, password: str) -> bool:
    try:
        _, log2_n, _r, _p, salt, digest = stored.split("$")
        expected = _unb64(digest)
        return hmac.compare_digest(_scrypt(password, _unb64(salt), int(log2_n)), expected)
    except (ValueError, binascii.Error):
        return False


def _scrypt(password: str, salt: bytes, log2_n: int) -> bytes:
    n = 1 << log2_n
    return _offload(lambda: hashlib.scrypt(password.encode(), salt=salt, n=n, r=8, p=1, dklen=32,
                                           maxmem=256 * n * 8 + 1024 * 1024))


def _offload(fn: Any) -> Any:
    """Run CPU-bound work in gevent's thread pool when gevent is active (hashlib.scrypt
    releases the GIL), so one login never stalls the other requests of a gevent worker."""
    gevent_monkey = sys.modules.get("gevent.monkey")
    if gevent_monkey is not None and gevent_monkey.is_module_patched("socket"):
        import gevent

        return gevent.get_hub().threadpool.apply(fn)
    return fn()


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# --- tokens ---------------------------------------------------------------------------------
def new_server_key(server_id: str) -> str:
    return f"s.{server_id}.{new_secret()}"


def new_session_token(lname: str) -> str:
    return f"p.{_b64(lname.encode())}.{new_secret()}"


def session_owner(token: str) -> str | None:
    """The lowercase player name a session token claims, or None if malformed."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != "p":
        return None
    try:
        name = _unb64(parts[1]).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return name if 2 <= len(name) <= 15 else None


# Reads an operation declares (Operation.prefetch) are queued behind the credential check in
# the same pipeline: ``extra(pipe, who)`` with the name or server id the token claims. Their
# results are used only once the credential is proven (and they are reads only).
Extra = Callable[[Any, str], None] | None


def read_session(r: Any, token: str, account: Sequence[str] = ()) -> Caller | None:
    """The player a session token belongs to, or None. One Redis round trip, which also reads
    the ``account`` fields an operation needs (same hash tag), sparing it a round trip."""
    return _session(r, token, account, None)[0]


def check_server_key(r: Any, server_id: str, key: str) -> Caller | None:
    """The server caller if ``key`` is the current key of ``server_id``. One round trip."""
    return _server(r, server_id, key, None)[0]


def resolve(r: Any, config: Config, token: str | None, account: Sequence[str] = ()) -> Caller:
    """The caller a bearer token names; ANONYMOUS for none; Unauthenticated for a bad one.

    For a player, ``account`` names account fields to read in the same round trip."""
    return resolve_with(r, config, token, account)[0]


def resolve_with(r: Any, config: Config, token: str | None, account: Sequence[str] = (),
                 extra: Extra = None) -> tuple[Caller, list | None]:
    """:func:`resolve`, plus the results of ``extra``'s reads, sent in the same round trip
    (None when they were not sent: no token, or the admin token, which needs no Redis)."""
    if not token:
        return ANONYMOUS, None
    if config.admin_token and hmac.compare_digest(token.encode(), config.admin_token.encode()):
        return ADMIN_CALLER, None
    found: tuple[Caller | None, list | None] = (None, None)
    if token.startswith("s."):
        parts = token.split(".")
        if len(parts) == 3:
            found = _server(r, parts[1], token, extra)
    elif token.startswith("p."):
        found = _session(r, token, account, extra)
    if found[0] is None:
        raise Unauthenticated("invalid or expired token")
    return found[0], found[1]


def _session(r: Any, token: str, account: Sequence[str],
             extra: Extra) -> tuple[Caller | None, list | None]:
    lname = session_owner(token)
    if lname is None:
        return None, None
    token_hash = sha256(token)
    pipe: Any = Reads(r)  # the check and the operation's prefetched reads: one round trip
    pipe.get(keys.player_session(lname, token_hash))
    pipe.hmget(keys.player(lname), "id", *account)  # the account must still be the same one
    if extra:
        extra(pipe, lname)
    raw, (account_id, *values), *fetched = pipe.execute()
    if raw is None:
        return None, None
    data = json.loads(raw)
    if not account_id or data.get("id") != account_id:
        return None, None  # the player was deleted (and maybe the name registered again)
    fields = dict(zip(account, values, strict=True))
    caller = Caller("player", data["id"], data["name"], token_hash, fields,
                    float(data.get("used") or data.get("created") or 0))
    return caller, (fetched if extra else None)


def _server(r: Any, server_id: str, key: str, extra: Extra) -> tuple[Caller | None, list | None]:
    if not server_id.isalnum() or len(server_id) > 32:
        return None, None
    pipe: Any = Reads(r)
    pipe.hmget(keys.server(server_id), "key", "name")
    if extra:
        extra(pipe, server_id)
    (stored, name), *fetched = pipe.execute()
    if stored and hmac.compare_digest(stored, sha256(key)):
        return Caller("server", server_id, name or ""), (fetched if extra else None)
    return None, None
