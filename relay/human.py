"""HUMAN mode's presentation: what a person at a telnet prompt reads.

``relay.protocol`` keeps the wire format (JSON lines, CRLF, the bounds); this module turns an
operation's answer into readable lines, chosen by the operation's name (:data:`FORMATTERS`, an
operation -> formatter table; any other answer reads as ``key: value`` lines), and writes the
unasked mail lines and ``HELP``. The JSON modes never come here: they keep the raw answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from relay.protocol import PROMPT, text
from shared import SOURCE_URL

Names = dict[str, str]  # server id -> server name, for the servers an answer names


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value.replace("\r", "\\r").replace("\n", "\\n")
    if value is None:
        return "-"
    return json.dumps(value)


# These members of a result read as UTC times (they are epoch seconds), and a ``server`` member
# (or a ban's ``scope``) as the server's name with its id (names looked up by the caller).
TIME_KEYS = frozenset({"at", "created", "last_seen", "expires_at", "updated", "lifted_at"})
SERVER_KEY = "server"
SERVER_KEYS = frozenset({SERVER_KEY, "scope"})


def utc(epoch: float) -> str:
    """Epoch seconds as ``2026-11-30 23:41:05 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def server_ids(data: Any) -> list[str]:
    """The server ids a result names under ``server`` (top level, nested, in record lists)."""
    found: dict[str, None] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in SERVER_KEYS and isinstance(item, str) and item != "global":
                    found[item] = None
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
    walk(data)
    return list(found)


def _human(key: str, value: Any, names: Names) -> str:
    if key in TIME_KEYS and isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return utc(value)
        except (OverflowError, OSError, ValueError):
            return _scalar(value)
    if key == SERVER_KEY and isinstance(value, str) and value in names:
        return f"{_scalar(names[value])} ({value})"
    return _scalar(value)


def _server(value: str, names: Names) -> str:
    return f"{_scalar(names[value])} ({value})" if value in names else _scalar(value)


def _when(value: Any) -> str:
    return _human("at", value, {}) if value is not None else "-"


def _more(data: dict[str, Any]) -> list[str]:
    return [f"more: cursor {data['next_cursor']}"] if data.get("next_cursor") else []


# --- one formatter per operation whose answer reads better as sentences ----------------------
def _ban(ban: dict[str, Any], names: Names) -> str:
    """One ban as a moderator reads it."""
    target = " ".join(f"{k} {_scalar(ban[k])}" for k in ("player", "ip") if ban.get(k))
    scope = "everywhere" if ban.get("scope") == "global" else \
        "on " + _server(str(ban.get("scope")), names)
    until = f"until {_when(ban['expires_at'])}" if ban.get("expires_at") else "permanent"
    line = (f"ban {_scalar(ban.get('id'))}: {target} {scope}, {until} - "
            f"{_scalar(ban.get('reason'))} (by {_server(str(ban.get('by')), names)}, "
            f"{_when(ban.get('at'))})")
    if ban.get("lifted_at"):
        line += f" [lifted {_when(ban['lifted_at'])} by {_scalar(ban.get('lifted_by'))}]"
    elif ban.get("active") is False:
        line += " [expired]"
    return line


def _one_ban(data: dict[str, Any], names: Names) -> list[str]:
    """``ban.create``."""
    return [_ban(data, names)]


def _bans(head: Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any], Names],
                                                             list[str] | None]:
    def lines(data: dict[str, Any], names: Names) -> list[str] | None:
        if not isinstance(data.get("bans"), list):
            return None
        return [head(data)] + ["  " + _ban(b, names) for b in data["bans"]
                               if isinstance(b, dict)] + _more(data)
    return lines


def _name_check(data: dict[str, Any], names: Names) -> list[str]:
    if data.get("allowed"):
        return ["allowed"]
    if data.get("reason") == "name_registered":
        return [f"refused: the registered name of {_scalar(data.get('owner'))}"]
    return [f"refused: carries the tag of clan {_scalar(data.get('clan'))}"]


def _clan(data: dict[str, Any], names: Names) -> list[str] | None:
    """``clan.get``, ``clan.create``."""
    if not isinstance(data.get("members"), list):
        return None
    return [f"[{_scalar(data.get('tag'))}] {_scalar(data.get('name'))}",
            f"owner: {_scalar(data.get('owner'))}",
            f"members ({len(data['members'])}): " + ", ".join(_scalar(m) for m in data["members"]),
            f"founded: {_when(data.get('created'))}"]


def _audit(data: dict[str, Any], names: Names) -> list[str] | None:
    if not isinstance(data.get("entries"), list):
        return None
    lines = [f"{_when(e.get('at'))} {_scalar(e.get('op'))} by {_scalar(e.get('by'))}: "
             f"{_scalar(e.get('target'))}" + (f" ({_scalar(e['reason'])})"
                                                if e.get("reason") else "")
             for e in data["entries"] if isinstance(e, dict)]
    return [f"{len(lines)} entr{'y' if len(lines) == 1 else 'ies'}", *lines, *_more(data)]


def _day(epoch: Any) -> str:
    """A season boundary (unix seconds) as ``2026-11-30``; a boundary is always midnight UTC."""
    return time.strftime("%Y-%m-%d", time.gmtime(epoch)) if isinstance(epoch, int) else "-"


def _seasons(data: dict[str, Any], names: Names) -> list[str] | None:
    """``season.list`` as one line per season: its days and its top 3."""
    if not isinstance(data.get("seasons"), list):
        return None
    out = [f"{_scalar(data.get('board'))}: season {data.get('current')} now, "
           f"reset {_scalar(data.get('reset')) if data.get('reset') else 'never'}"]
    for s in data["seasons"]:
        if not isinstance(s, dict):
            continue
        end = s.get("end")
        days = f"{_day(s.get('start'))} to " + (_day(end) if end is not None else "now")
        top = ", ".join(f"{t.get('rank')}. {_scalar(t.get('player'))} {_scalar(t.get('score'))}"
                        for t in s.get("top") or [] if isinstance(t, dict)) or "no records"
        now = " (current)" if s.get("season") == data.get("current") else ""
        out.append(f"  season {_scalar(s.get('season'))}{now}, {days}: {top}")
    return out


Formatter = Callable[[dict[str, Any], Names], list[str] | None]
# operation name -> its answer as lines (None: the answer is not the expected shape, so it reads
# as ``key: value`` lines like any other)
FORMATTERS: dict[str, Formatter] = {
    "ban.create": _one_ban,
    "ban.check": _bans(lambda d: "BANNED" if d.get("banned") else "not banned"),
    "ban.list": _bans(lambda d: f"{len(d['bans'])} ban(s)"),
    "name.check": _name_check,
    "clan.create": _clan,
    "clan.get": _clan,
    "audit.list": _audit,
    "season.list": _seasons,
}


def lines(op: str | None, data: Any, names: Names | None = None) -> list[str]:
    """An answer as readable lines. ``op``'s formatter when it has one; else ``key: value``,
    a list of records one per indented line. Times read as UTC; a ``server`` id also shows its
    name when ``names`` has it."""
    if data is None:
        return ["OK"]
    if not isinstance(data, dict):
        return [_scalar(data)]
    names = names or {}
    special = FORMATTERS.get(op or "")
    shown = special(data, names) if special is not None else None
    if shown is not None:
        return shown

    def pairs(obj: dict[str, Any]) -> str:
        return ", ".join(f"{k}={_human(k, v, names)}" for k, v in obj.items())
    out: list[str] = []
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out.append(f"{key}: {len(value)}")
            out += ["  " + pairs(item) for item in value]
        elif isinstance(value, dict):
            out.append(f"{key}: " + pairs(value))
        else:
            out.append(f"{key}: {_human(key, value, names)}")
    return out


# --- unasked lines ---------------------------------------------------------------------------
def mail_notice(mails: Iterable[Sequence[str | None]], unread: int) -> bytes:
    """The unasked mail lines, ``(mail id, from, subject)`` each, then the prompt. A mail
    without a subject reads ``* New mail from bob (READMAIL <id>)``."""
    lines_ = [f"* New mail from {frm}" + (f": {_scalar(subject)}" if subject else "")
              + f" (READMAIL {mid})" for mid, frm, subject in mails if frm]
    return b"\r\n" + text(lines_ + [f"* {unread} unread"]) + PROMPT


# --- HELP --------------------------------------------------------------------------------------
HELP_TITLE = "Available commands:"
TOPICS_TITLE = "Topics (HELP <topic> lists its commands):"
HELP_HINT = "HELP <command> shows one command; HELP ALL lists every command."
HELP_ALL = "ALL"
SOURCE = f"Source: {SOURCE_URL} (AGPL-3.0-or-later)"


def help_entry(usage: str, summary: str) -> str:
    """One command in a HELP listing."""
    return f"  {usage} - {summary}"


def help_index(builtins: Iterable[str], topics: Iterable[tuple[str, str, int]]) -> list[str]:
    """``HELP``: the relay's own commands, the topics ``(name, title, commands)``, how to ask
    for more, and where the source is: one screen."""
    topics = list(topics)
    width = max((len(name) for name, _, _ in topics), default=0)
    return [HELP_TITLE, *(f"  {usage}" for usage in builtins), TOPICS_TITLE,
            *(f"  {name.ljust(width)}  {title} ({n} command{'s' if n != 1 else ''})"
              for name, title, n in topics),
            HELP_HINT, SOURCE]


def help_topic(name: str, title: str, entries: Iterable[str]) -> list[str]:
    """``HELP <topic>``: its title, then one entry per command."""
    return [f"{title} (topic {name}):", *entries]


# --- words a person types ----------------------------------------------------------------------
class Words(NamedTuple):
    """How HUMAN mode reads an operation's words when it differs from ``protocol.words``."""

    usage: str  # the words as HELP shows them
    fills: tuple[str, ...]  # the fields they can fill
    parse: Callable[[str], dict[str, str]]  # the rest of the line -> raw args


SUBJECT_BAR = "|"


def _mail_words(line: str) -> dict[str, str]:
    """``MAIL <to> [subject |] <body>``: text before the first ``|`` is the subject (``MAIL bob
    | a|b`` sends no subject and the body ``a|b``); without a ``|`` all of it is the body."""
    parts = line.strip().split(None, 1)
    raw = dict(zip(("to", "body"), parts, strict=False))
    subject, bar, body = raw.get("body", "").partition(SUBJECT_BAR)
    if bar:
        raw["subject"], raw["body"] = subject.strip(), body.strip()
    return raw


# operation name -> its HUMAN-mode words (the JSON modes' words stay ``protocol.words``)
WORDS: dict[str, Words] = {
    "mail.send": Words(f"<to> [subject {SUBJECT_BAR}] <body...>", ("to", "subject", "body"),
                       _mail_words),
}
