"""The relay's wire format as pure code: bytes in, lines and commands out, reply bytes back.

No sockets here (the h11 way): the I/O layer feeds what it receives to a :class:`LineReader`
and writes what the render functions return. The byte-exact strings of docs/RELAY.md live here and
only here: JSON lines use Python's default ``json.dumps`` spacing and every line ends in CRLF.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any, NamedTuple

from shared.errors import TooLarge

MAX_LINE = 8 * 1024  # bytes, line ending excluded
OUT_LINE_MAX = 1024 * 1024  # bytes of one line the relay sends, line ending excluded (RELAY.md)
CRLF = "\r\n"
PROMPT = b"> "
MODES = ("SERVER", "CLIENT", "HUMAN")
HW_MAX = 64

GREETING_MSG = "CONNECTED serversquaredGlobal"
WELCOME = "Welcome to serversquared Modification Global Backend."
NO_MODE = "No mode set."
NOT_FOUND = "Command not found."
INVALID_JSON = "Invalid JSON."
SERVER_FULL = "Server full."
TOO_MANY = "Too many connections."
LINE_TOO_LONG = f"Line too long (max {MAX_LINE} bytes)."
BAD_UTF8 = "Invalid UTF-8."
BAD_ARGS = "args must be a string or a JSON object."
ID_MAX = 64  # characters of a command's "id" (a string, or a number's JSON text)
BAD_ID = f"id must be a string or a number of at most {ID_MAX} characters."
BAD_KEY = "idempotency_key must be a string."
BAD_AS = "as must be a string: a player session token."
AS_BUILTIN = "as applies to operations only, not to {}."
AS_REFUSED = "as: invalid or expired player session token"
HELLO = "Hello, world!"
HW_RANGE = f"n: must be a whole number from 1 to {HW_MAX}"
INVALID_MODE = "Invalid mode: {}"
MODE_OK = "Mode: {}"
MODE_SET = "Mode already set: {}"
GOODBYE = "Goodbye."
USAGE = "Usage: {}"
NEED_AUTH = "Not authenticated: send AUTH <server_id> <key> first."
BAD_SERVER_KEY = "Invalid server id or key."
BAD_TOKEN = "Invalid or expired token."
AUTHENTICATED = "Authenticated as {}."  # server <id> | player <name> | admin
LOGGED_IN = "Logged in as {}."
EXPIRED = "your session or server key is no longer valid; authenticate again"
RESUME_NEEDS_AUTH = "RESUME needs SERVER mode and AUTH"
RESUMING = "Resuming after {}."
IDLE_TIMEOUT = "Idle timeout."
SHUTTING_DOWN = "Server shutting down."
HANDSHAKE_TIMEOUT = "Handshake timeout."
SERVER_SLOTS = "Too many connections for server {} (max {})."
REPLY_TOO_LARGE = f"Reply too large (max {OUT_LINE_MAX} bytes a line); ask for less."
REVOKED = "Connection closed: {}."  # the last line to a connection whose key or session ended
REVOKED_WHY = {  # the reason a revocation names (shared.storage.revocations) -> its words
    "rotated": "the server key was rotated",
    "server_deleted": "the server was deleted",
    "logout": "the session was logged out",
    "password": "the password was changed",
    "deleted": "the account was deleted",
    "evicted": "the session was ended by a newer login (too many sessions)",
}
REVOKED_ANY = "the key or session is no longer valid"

_NOTHING: Any = object()
IAC, SB, SE, WILL, DONT = 255, 250, 240, 251, 254


class ProtocolError(Exception):
    """A line the protocol cannot read; ``str(err)`` is the message to answer, ``code`` the
    error code to add (none for the legacy ``Invalid JSON.``), ``rid`` the command's valid
    ``"id"`` if it had one."""

    def __init__(self, msg: str, code: str | None = None, rid: Any = _NOTHING) -> None:
        super().__init__(msg)
        self.code, self.rid = code, rid


class Command(NamedTuple):
    """One parsed command. ``rid`` is the JSON command's ``"id"`` (``_NOTHING`` when it sent
    none), echoed as the last member of its reply."""

    name: str
    args: str | dict[str, Any]
    key: str | None = None  # idempotency_key
    rid: Any = _NOTHING
    as_: str | None = None  # "as": a player session token this one command runs with


# --- rendering ------------------------------------------------------------------------------
class LineTooLarge(TooLarge):
    """A line to send would pass OUT_LINE_MAX: the relay answers 413 ``too_large`` instead."""

    def __init__(self, size: int) -> None:
        super().__init__(REPLY_TOO_LARGE)
        self.size = size


def json_line(obj: dict[str, Any]) -> bytes:
    """``obj`` as one JSON line. Raises LineTooLarge past OUT_LINE_MAX: serialising stops
    there, so an oversized answer is never rendered whole (see ``bounded_dumps``)."""
    if "data" not in obj:  # no answer data: small by construction
        text = json.dumps(obj)
        if len(text) > OUT_LINE_MAX:
            raise LineTooLarge(len(text))
        return (text + CRLF).encode()
    return (bounded_dumps(obj, OUT_LINE_MAX) + CRLF).encode()


class _Over(Exception):
    pass


_dumps = json.JSONEncoder().encode  # json.dumps' defaults: ASCII, ", " and ": "


def bounded_dumps(obj: Any, limit: int, depth: int = 4) -> str:
    """``json.dumps(obj)``, byte for byte, but given up (LineTooLarge) as soon as the text
    passes ``limit``: dicts and lists are walked ``depth`` levels deep and their members
    rendered one by one by the C encoder, so a 9 MB ``message.read`` answer costs about
    ``limit`` bytes of work, not 9 MB. The text is ASCII, so characters are bytes."""
    parts: list[str] = []
    size = 0

    def emit(text: str) -> None:
        nonlocal size
        size += len(text)
        if size > limit:
            raise _Over
        parts.append(text)

    def walk(value: Any, level: int) -> None:
        if level and isinstance(value, dict) and value and \
                all(isinstance(k, str) for k in value):
            emit("{")
            for i, (k, v) in enumerate(value.items()):
                emit(f"{', ' if i else ''}{_dumps(k)}: ")
                walk(v, level - 1)
            emit("}")
        elif level and isinstance(value, list) and value:
            emit("[")
            for i, v in enumerate(value):
                if i:
                    emit(", ")
                walk(v, level - 1)
            emit("]")
        else:
            emit(_dumps(value))
    try:
        walk(obj, depth)
    except _Over:
        raise LineTooLarge(size) from None
    return "".join(parts)


def ok(msg: str, data: Any = _NOTHING, rid: Any = _NOTHING) -> bytes:
    body: dict[str, Any] = {"state": "OK", "msg": msg}
    if data is not _NOTHING:
        body["data"] = data
    if rid is not _NOTHING:
        body["id"] = rid
    return json_line(body)


def error(msg: str, code: str | None = None, retry_after: int | None = None,
          rid: Any = _NOTHING) -> bytes:
    body: dict[str, Any] = {"state": "ERROR", "msg": msg}
    if code:
        body["code"] = code
    if retry_after:
        body["retry_after"] = retry_after
    if rid is not _NOTHING:
        body["id"] = rid
    return json_line(body)


def push(event: str, stream_id: str, data: Any) -> bytes:
    return json_line({"state": "PUSH", "event": event, "id": stream_id, "data": data})


def text(lines: Iterable[str]) -> bytes:
    """HUMAN-mode lines; LineTooLarge past OUT_LINE_MAX in all (a person never needs more)."""
    out, size = [], 0
    for line in lines:
        size += len(line) + 2
        if size > OUT_LINE_MAX:
            raise LineTooLarge(size)
        out.append(line + CRLF)
    return "".join(out).encode()


def human_error(msg: str) -> bytes:
    return text([f"ERROR: {msg}"])


def closing(msg: str, human: bool, code: str | None = None) -> bytes:
    """The last line to a connection the relay closes (idle, shutting down, revoked)."""
    return human_error(msg) if human else error(msg, code)


GREETING = ok(GREETING_MSG)


# --- reading --------------------------------------------------------------------------------
class LineReader:
    """Splits a byte stream into lines; drops telnet IAC sequences; bounds line length.

    ``feed`` returns complete lines without their line ending, and ``None`` in place of a line
    longer than MAX_LINE (the rest of that line is then discarded up to its end).
    """

    __slots__ = ("buf", "iac", "skipping")

    def __init__(self) -> None:
        self.buf = b""
        self.iac = 0  # 0 data, 1 after IAC, 2 option byte due, 3 in SB, 4 IAC inside SB
        self.skipping = False

    def feed(self, data: bytes) -> list[bytes | None]:
        if self.iac or IAC in data:
            data = self._strip_iac(data)
        buf = self.buf + data if self.buf else data
        lines: list[bytes | None] = []
        start = 0
        while (nl := buf.find(b"\n", start)) >= 0:
            line = buf[start:nl].rstrip(b"\r\x00")
            if self.skipping:
                self.skipping = False
            else:
                lines.append(line if len(line) <= MAX_LINE else None)
            start = nl + 1
        rest = buf[start:] if start else buf
        if self.skipping:
            rest = b""
        elif len(rest) > MAX_LINE + 1:
            lines.append(None)
            self.skipping, rest = True, b""
        self.buf = rest
        return lines

    def _strip_iac(self, data: bytes) -> bytes:
        out = bytearray()
        state = self.iac
        for b in data:
            if state == 0:
                if b == IAC:
                    state = 1
                else:
                    out.append(b)
            elif state == 1:
                if b == IAC:
                    out.append(b)  # escaped 0xFF data byte
                    state = 0
                elif WILL <= b <= DONT:
                    state = 2
                else:
                    state = 3 if b == SB else 0
            elif state == 2:
                state = 0
            elif state == 3:
                state = 4 if b == IAC else 3
            else:
                state = 0 if b == SE else 3
        self.iac = state
        return bytes(out)


def parse_text(line: str) -> tuple[str, str]:
    """``NAME rest of line`` -> (upper-case name, rest)."""
    parts = line.strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0].upper(), parts[1] if len(parts) > 1 else ""


def parse_json(line: str) -> Command:
    """``{"cmd": NAME, "args": "words" | {...}, "idempotency_key"?: k, "id"?: x, "as"?: t}``."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        raise ProtocolError(INVALID_JSON) from None
    if not isinstance(obj, dict):
        raise ProtocolError(INVALID_JSON)
    rid = obj.get("id", _NOTHING)
    if rid is not _NOTHING and not valid_id(rid):
        raise ProtocolError(BAD_ID, "invalid_input")
    if not isinstance(obj.get("cmd"), str):
        raise ProtocolError(INVALID_JSON, rid=rid)
    args = obj.get("args")
    if args is None:
        args = ""
    elif isinstance(args, int | float) and not isinstance(args, bool):
        args = str(args)
    elif not isinstance(args, str | dict):
        raise ProtocolError(BAD_ARGS, rid=rid)
    key = obj.get("idempotency_key")
    if key is not None and not isinstance(key, str):
        raise ProtocolError(BAD_KEY, "invalid_input", rid)
    as_ = obj.get("as")
    if as_ is not None and not isinstance(as_, str):
        raise ProtocolError(BAD_AS, "invalid_input", rid)
    return Command(obj["cmd"].strip().upper(), args, key, rid, as_)


def valid_id(rid: Any) -> bool:
    """A string, or a finite number, of at most ID_MAX characters (a number's JSON text)."""
    if isinstance(rid, str):
        return len(rid) <= ID_MAX
    if isinstance(rid, float):
        return math.isfinite(rid) and len(json.dumps(rid)) <= ID_MAX
    return isinstance(rid, int) and not isinstance(rid, bool) and len(str(rid)) <= ID_MAX


def parse_any(line: str) -> Command:
    """Before a mode is set a command may come as words or as JSON."""
    if line.lstrip().startswith("{"):
        return parse_json(line)
    return parse_text_command(line)


def parse_text_command(line: str) -> Command:
    name, rest = parse_text(line)
    return Command(name, rest, None, _NOTHING)


def positional(fields: tuple[Any, ...]) -> int:
    """How many of ``fields`` words can fill: up to the ``rest`` field (else all)."""
    return next((i + 1 for i, f in enumerate(fields) if f.rest), len(fields))


def words(fields: tuple[Any, ...], line: str) -> tuple[dict[str, str], frozenset[str]]:
    """Fill ``fields`` in order from the words of ``line``; returns (raw args, text fields).

    The field marked ``rest`` (else the last field) takes the rest of the line as typed, so
    ``SEND srv1 hello there`` gives ``{to: srv1, body: "hello there"}``.
    """
    line = line.strip()
    if not fields or not line:
        return {}, frozenset()
    parts = line.split(None, positional(fields) - 1)
    raw = {f.name: part for f, part in zip(fields, parts, strict=False)}
    return raw, frozenset(raw)


def stream_key(stream_id: str) -> tuple[int, int]:
    """A stream id as a comparable pair (``"0"`` and ``"5"`` mean ``0-0`` and ``5-0``)."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)
