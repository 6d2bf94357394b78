"""Everything stored about one player, for ``player.export`` (README "Web pages" ``/me/export``).

Reads only, each group on its own (docs/CLUSTER.md): the player's own keys (account, settings,
sessions, mailbox, board set, ban copies) in one pipeline; then each board's meta, current record
and
kept past seasons; the clan; the audit entries naming them. No secret leaves here: the account's
password hash is left out and sessions are shown by id (``shared/storage/sessions.py``).
"""

from __future__ import annotations

import json
from typing import Any

from shared import keys
from shared.config import Config
from shared.storage import clans, records, seasons, sessions, settings

AUDIT_BATCH = 1000
# the account hash's fields but the password hash (shared/keys.py ``player``)
ACCOUNT = ("id", "name", "created", "last_seen", "server", "clan")


def gather(r: Any, config: Config, lname: str, current: str, now: float) -> dict[str, Any] | None:
    """The export document, or None when there is no such player."""
    pipe = r.pipeline(transaction=False)
    pipe.hgetall(keys.player(lname))
    pipe.hgetall(keys.player_settings(lname))
    sessions.list_reads(pipe, {}, lname)
    pipe.zrevrange(keys.mailbox(lname), 0, -1)
    pipe.smembers(keys.player_boards(lname))
    pipe.hgetall(keys.player_bans(lname))
    pipe.hgetall(keys.mail_blocked(lname))
    acct, stored_settings, flat, mail_ids, boards, bans, blocked = pipe.execute()
    if not acct.get("id"):
        return None
    account = {k: _number(acct.get(k)) for k in ACCOUNT}
    ltag = acct.get("clan")
    clan = clans.listing(r, ltag) if clans.still_member(r, lname, ltag) else None
    return {"exported_at": int(now), "account": account,
            "settings": settings.render(stored_settings)["settings"],
            "records": _records(r, config, lname, sorted(boards), now),
            "mail": _mail(r, lname, mail_ids), "clan": clan,
            "sessions": sessions.render(flat, current, config.session_ttl),
            "bans": [json.loads(v) for _, v in sorted(bans.items())
                     if v.startswith("{")],  # not a lifted ban's tombstone ('-<ms>')
            "audit": audit_naming(r, acct["name"]),
            "blocked": [v for _, v in sorted(blocked.items())]}


def _number(value: str | None) -> Any:
    return int(value) if value and value.isdigit() else value or None


def _mail(r: Any, lname: str, ids: list[str]) -> list[dict[str, Any]]:
    """Every mail in the mailbox, newest first, with its body; reading it here marks nothing."""
    pipe = r.pipeline(transaction=False)
    for mail_id in ids:
        pipe.hgetall(keys.mail(lname, mail_id))
    out = []
    for mail_id, m in zip(ids, pipe.execute() if ids else [], strict=True):
        if m:
            out.append({"id": mail_id, "from": m.get("from"), "subject": m.get("subject", ""),
                        "body": m.get("body", ""), "at": float(m.get("at", 0)),
                        "read": m.get("read") == "1"})
    return out


def _records(r: Any, config: Config, lname: str, boards: list[str],
             now: float) -> list[dict[str, Any]]:
    """The player's record on each board in the current season and in every past season still
    kept: ``{board, season (None for a board without reset), rank, score, meta, server, at}``."""
    pipe = r.pipeline(transaction=False)
    for board in boards:
        pipe.hmget(keys.board(board), "reset", "created")
    wanted: list[tuple[str, int | None, float]] = []
    for board, (reset, created) in zip(boards, pipe.execute() if boards else [], strict=True):
        if not reset:
            wanted.append((board, None, now))
            continue
        current = seasons.number(reset, float(created), now)
        for n in range(current, seasons.kept_from(current, config.seasons_kept) - 1, -1):
            t = now if n == current else seasons.bounds(reset, float(created), n)[0]
            wanted.append((board, n, t))
    pipe = r.pipeline(transaction=False)
    for board, _, t in wanted:
        records.OF_PLAYER(r, records.board_keys(board, t), [lname], pipeline=pipe)
    out = []
    for (board, season, _), got in zip(wanted, pipe.execute() if wanted else [], strict=True):
        if got:
            rec = records.render(got[1], got[0])
            del rec["player"]
            out.append({"board": board, "season": season, **rec})
    return out


# the audited operations whose target names a player, and the target field that does (None:
# the first, written plain; the others are written ``field=value``: storage/audit.target_of)
PLAYER_TARGETS = {"player.delete": None, "ban.create": "player", "clan.transfer": "player",
                  "record.void": "name"}


def names_player(entry: dict[str, str], lname: str) -> bool:
    """Whether an audit entry was made by the player or names them as its target."""
    if entry.get("by", "").lower() == f"player:{lname}":
        return True
    op = entry.get("op", "")
    if op not in PLAYER_TARGETS:
        return False
    words = entry.get("target", "").lower().split()
    field = PLAYER_TARGETS[op]
    if field is None:
        return bool(words) and words[0] == lname
    return f"{field}={lname}" in words


def audit_naming(r: Any, name: str) -> list[dict[str, Any]]:
    """Audit entries made by the player or naming them in their target, oldest first. Walks the
    whole log (kept a year) in batches: an export is rare, and the log has no index by name."""
    lname = name.lower()
    out, start = [], "-"
    while True:
        got = r.xrange(keys.audit_log(), min=start, max="+", count=AUDIT_BATCH)
        for entry_id, f in got:
            if names_player(f, lname):
                out.append({"id": entry_id, "op": f.get("op", ""), "by": f.get("by", ""),
                            "target": f.get("target", ""), "reason": f.get("reason") or None,
                            "at": float(f.get("at", 0))})
        if len(got) < AUDIT_BATCH:
            return out
        start = f"({got[-1][0]}"
