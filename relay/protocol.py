"""The relay's wire format as pure code: bytes in, lines and commands out, reply bytes back.

No sockets here (the h11 way): the I/O layer feeds what it receives to a :class:`LineReader`
and writes what the render functions return. The byte-exact strings of SPEC §5 live here and
only here: JSON lines use Python's default ``json.dumps`` spacing and every line ends in CRLF.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

MAX_LINE = 8 * 1024  # bytes, line ending excluded
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
HELLO = "Hello, world!"

_NOTHING: Any = object()
IAC, SB, SE, WILL, DONT = 255, 250, 240, 251, 254


class ProtocolError(Exception):
    """A line the protocol cannot read; ``str(err)`` is the message to answer."""


# --- rendering ------------------------------------------------------------------------------
def json_line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj) + CRLF).encode()


def ok(msg: str, data: Any = _NOTHING) -> bytes:
    body: dict[str, Any] = {"state": "OK", "msg": msg}
    if data is not _NOTHING:
        body["data"] = data
    return json_line(body)


def error(msg: str, code: str | None = None, retry_after: int | None = None) -> bytes:
    body: dict[str, Any] = {"state": "ERROR", "msg": msg}
    if code:
        body["code"] = code
    if retry_after:
        body["retry_after"] = retry_after
    return json_line(body)


def push(event: str, stream_id: str, data: Any) -> bytes:
    return json_line({"state": "PUSH", "event": event, "id": stream_id, "data": data})


def text(lines: Iterable[str]) -> bytes:
    return "".join(line + CRLF for line in lines).encode()


GREETING = ok(GREETING_MSG)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value.replace("\r", "\\r").replace("\n", "\\n")
    if value is None:
        return "-"
    return json.dumps(value)


def human_lines(data: Any) -> list[str]:
    """A result as readable lines: ``key: value``; a list of records one per indented line."""
    if data is None:
        return ["OK"]
    if not isinstance(data, dict):
        return [_scalar(data)]
    out: list[str] = []
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out.append(f"{key}: {len(value)}")
            out += ["  " + ", ".join(f"{k}={_scalar(v)}" for k, v in item.items())
                    for item in value]
        elif isinstance(value, dict):
            out.append(f"{key}: " + ", ".join(f"{k}={_scalar(v)}" for k, v in value.items()))
        else:
            out.append(f"{key}: {_scalar(value)}")
    return out


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


def parse_json(line: str) -> tuple[str, str | dict[str, Any], str | None]:
    """``{"cmd": NAME, "args": "words" | {...}, "idempotency_key"?: k}`` -> (NAME, args, key)."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        raise ProtocolError(INVALID_JSON) from None
    if not isinstance(obj, dict) or not isinstance(obj.get("cmd"), str):
        raise ProtocolError(INVALID_JSON)
    args = obj.get("args")
    if args is None:
        args = ""
    elif isinstance(args, int | float) and not isinstance(args, bool):
        args = str(args)
    elif not isinstance(args, str | dict):
        raise ProtocolError(BAD_ARGS)
    key = obj.get("idempotency_key")
    return obj["cmd"].strip().upper(), args, key if isinstance(key, str) else None


def parse_any(line: str) -> tuple[str, str | dict[str, Any], str | None]:
    """Before a mode is set a command may come as words or as JSON."""
    if line.lstrip().startswith("{"):
        return parse_json(line)
    name, rest = parse_text(line)
    return name, rest, None


def words(fields: tuple[Any, ...], line: str) -> tuple[dict[str, str], frozenset[str]]:
    """Fill ``fields`` in order from the words of ``line``; returns (raw args, text fields).

    The field marked ``rest`` (else the last field) takes the rest of the line as typed, so
    ``SEND srv1 hello there`` gives ``{to: srv1, body: "hello there"}``.
    """
    line = line.strip()
    if not fields or not line:
        return {}, frozenset()
    last = next((i for i, f in enumerate(fields) if f.rest), len(fields) - 1)
    parts = line.split(None, last)
    raw = {f.name: part for f, part in zip(fields, parts, strict=False)}
    return raw, frozenset(raw)


def stream_key(stream_id: str) -> tuple[int, int]:
    """A stream id as a comparable pair (``"0"`` and ``"5"`` mean ``0-0`` and ``5-0``)."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)
