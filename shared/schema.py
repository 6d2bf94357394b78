"""Declared inputs of an operation: validated once at the boundary, rendered into OpenAPI.

A field's value arrives typed (a JSON body, a relay JSON object) or as text (a path segment, a
query string, a relay word). Text is converted; typed values must already have the right type.
Limits may name a Config attribute (``max_len="mail_body_max"``) so they follow configuration.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.config import Config
from shared.errors import InvalidInput, TooLarge

MISSING: Any = object()

PLAYER_NAME = r"[A-Za-z0-9_.\-\[\]()|]{2,15}"
SERVER_ID = r"[a-z0-9]{1,32}"
BOARD_ID = r"[a-z0-9_.:-]{1,64}"
SETTING_KEY = r"[A-Za-z0-9_.:-]{1,64}"
CHANNEL = r"[A-Za-z0-9_.:-]{1,64}"
# an inbox stream id ("0" = from the oldest kept): message.read's cursor and the relay's RESUME
STREAM_CURSOR = r"[0-9]{1,19}(-[0-9]{1,19})?"

# Text rules (docs/API.md), in this one place. Single-line text (a Str with no pattern of its own:
# names, subjects, heartbeat fields) refuses C0 and C1 controls, DEL, the Unicode line and
# paragraph separators and every bidirectional formatting character: the embeddings and
# overrides (U+202A-U+202E), the isolates (U+2066-U+2069) and the invisible marks (U+200E,
# U+200F, U+061C), which can reorder or disguise what a telnet user or the status page shows.
# Multi-line text (``pattern=TEXT``: message and mail bodies) keeps tab and line breaks and
# refuses the other C0 controls, DEL and the C1 controls.
_C1 = r"\x80-\x9f"
_BIDI = r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
LINE = rf"[^\x00-\x1f\x7f{_C1}\u2028\u2029{_BIDI}]*"  # single-line text
LINE_REFUSED = re.compile(rf"[\x00-\x1f\x7f{_C1}\u2028\u2029{_BIDI}]")
TEXT_REFUSED = re.compile(rf"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f{_C1}]")
TEXT = rf"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f{_C1}]*"  # multi-line text
# A nickname (name.check's ``nick``, README "Abuse budgets") refuses besides what single-line text
# does every invisible character a look-alike name could hide: the Unicode format characters
# (category Cf:
# soft hyphen U+00AD, zero-width space/joiners U+200B-U+200D, word joiner U+2060 and the
# invisible operators, BOM U+FEFF, tag characters U+E0000-U+E007F, ...), the combining grapheme
# joiner U+034F, the variation selectors and the blank Hangul and Khmer fillers. The ranges
# beyond U+FFFF are written as characters (a JSON Schema pattern has no \U escape).
_INVISIBLE = (r"\u00ad\u034f\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4"
              r"\u17b5\u180b-\u180f\u200b-\u200d\u2060-\u2065\u206a-\u206f\u3164\ufe00-\ufe0f"
              r"\ufeff\ufff9-\ufffb\uffa0"
              "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
              "\U0001d173-\U0001d17a\U000e0000-\U000e0fff")
NICK = rf"[^\x00-\x1f\x7f{_C1}\u2028\u2029{_BIDI}{_INVISIBLE}]*"
NICK_REFUSED = re.compile(rf"[\x00-\x1f\x7f{_C1}\u2028\u2029{_BIDI}{_INVISIBLE}]")
TEXT_RULES: dict[str | None, tuple[re.Pattern, str]] = {  # keyed by a Str field's pattern
    None: (LINE_REFUSED, "no control, line separator or bidirectional formatting characters "
                         "in single-line text"),
    TEXT: (TEXT_REFUSED, "no control characters but tab and line breaks"),
    NICK: (NICK_REFUSED, "no control, bidirectional formatting or invisible (zero-width or "
                         "format) characters in a nickname"),
}
MAX_SAFE_INT = 2**53 - 1


@dataclass(frozen=True)
class Field:
    """One input. ``where`` is path, query or body; ``rest`` takes the rest of a relay line."""

    name: str
    kind: str = "str"  # str | int | bool | json | strlist | enum
    required: bool = True
    where: str = "body"
    pattern: str | None = None
    min_len: int = 0
    max_len: int | str | None = None
    lo: int | None = None
    hi: int | None = None
    choices: tuple[str, ...] = ()
    max_items: int | str | None = None
    item: Field | None = None
    max_bytes: int | str | None = None
    default: Any = MISSING
    rest: bool = False
    secret: bool = False  # a password: never part of the Idempotency-Key fingerprint
    # a secret that is a random token (never a password): its sha256 joins the fingerprint
    fingerprinted: bool = False
    doc: str = ""
    _regex: re.Pattern | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.pattern:
            object.__setattr__(self, "_regex", re.compile(f"(?:{self.pattern})"))


def Str(name: str, **kw: Any) -> Field:  # capitalized: reads like a type in declarations
    return Field(name, "str", **kw)


def Int(name: str, **kw: Any) -> Field:
    return Field(name, "int", **kw)


def Bool(name: str, **kw: Any) -> Field:
    return Field(name, "bool", **kw)


def Json(name: str, **kw: Any) -> Field:
    return Field(name, "json", **kw)


def Enum(name: str, choices: tuple[str, ...], **kw: Any) -> Field:
    return Field(name, "enum", choices=choices, **kw)


def StrList(name: str, item: Field, **kw: Any) -> Field:
    return Field(name, "strlist", item=item, **kw)


# Fields several operations declare alike.
SERVER_PATH_ID = Str("id", where="path", pattern=SERVER_ID)
PLAYER_PATH_NAME = Str("name", where="path", pattern=PLAYER_NAME,
                       doc="player name (case-insensitive)")
PASSWORD_MIN, PASSWORD_MAX = 6, 128


def _limit(value: int | str | None, config: Config) -> int | None:
    return getattr(config, value) if isinstance(value, str) else value


def check(f: Field, value: Any, config: Config, text: bool, label: str | None = None) -> Any:
    """Return the converted value of one field, or raise InvalidInput naming it. ``text``: the
    value arrived as text (path, query, relay words) and may be converted."""
    checker = _CHECKERS.get(f.kind)
    if checker is None:
        raise AssertionError(f"unknown field kind {f.kind}")  # a declaration bug, not input
    return checker(f, value, config, text, label or f.name)


def _check_str(f: Field, value: Any, config: Config, text: bool, label: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(label, "must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(label, "is not valid Unicode (lone surrogate)") from None
    rule = TEXT_RULES.get(f.pattern)
    bad = rule[0].search(value) if rule else None
    if bad and rule:
        raise InvalidInput(label, f"must not contain U+{ord(bad.group()):04X} ({rule[1]})")
    limit = _limit(f.max_len, config)
    if len(value) < f.min_len:
        raise InvalidInput(label, f"must be at least {f.min_len} characters")
    if limit is not None and len(value) > limit:
        raise InvalidInput(label, f"must be at most {limit} characters")
    if f._regex is not None and not f._regex.fullmatch(value):
        raise InvalidInput(label, f"has an invalid format (expected {f.pattern})")
    return value


def _check_enum(f: Field, value: Any, config: Config, text: bool, label: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(label, "must be a string")
    if value not in f.choices:
        raise InvalidInput(label, "must be one of " + ", ".join(f.choices))
    return value


def _check_int(f: Field, value: Any, config: Config, text: bool, label: str) -> int:
    if text and isinstance(value, str) and re.fullmatch(r"-?\d{1,20}", value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(label, "must be an integer")
    lo = f.lo if f.lo is not None else -MAX_SAFE_INT
    hi = f.hi if f.hi is not None else MAX_SAFE_INT
    if not lo <= value <= hi:
        raise InvalidInput(label, f"must be between {lo} and {hi}")
    return value


def _check_bool(f: Field, value: Any, config: Config, text: bool, label: str) -> bool:
    if text and isinstance(value, str):
        low = value.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
    if not isinstance(value, bool):
        raise InvalidInput(label, "must be true or false")
    return value


def _check_json(f: Field, value: Any, config: Config, text: bool, label: str) -> Any:
    if text and isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            pass  # plain words are a string value
    try:
        encoded = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError):
        raise InvalidInput(label, "must be a JSON value (no NaN or Infinity)") from None
    limit = _limit(f.max_bytes, config)
    if limit is not None and len(encoded.encode()) > limit:
        raise TooLarge(f"{label}: must be at most {limit} bytes as JSON")
    return value


def _check_strlist(f: Field, value: Any, config: Config, text: bool, label: str) -> list:
    if text and isinstance(value, str):
        value = [v for v in value.split(",") if v] if value else []
    if not isinstance(value, list):
        raise InvalidInput(label, "must be a list")
    limit = _limit(f.max_items, config)
    if limit is not None and len(value) > limit:
        raise InvalidInput(label, f"must have at most {limit} items")
    assert f.item is not None
    return [check(f.item, v, config, text, f"{label}[{i}]") for i, v in enumerate(value)]


_CHECKERS: dict[str, Callable[[Field, Any, Any, bool, str], Any]] = {
    "str": _check_str, "enum": _check_enum, "int": _check_int, "bool": _check_bool,
    "json": _check_json, "strlist": _check_strlist}


def validate(fields: tuple[Field, ...], raw: Mapping[str, Any], config: Config,
             text_fields: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """Check ``raw`` against ``fields``; values named in ``text_fields`` arrived as text."""
    known = {f.name for f in fields}
    for name in raw:
        if name not in known:
            raise InvalidInput(str(name)[:64], "unknown field")
    out: dict[str, Any] = {}
    for f in fields:
        value = raw.get(f.name, MISSING)
        if value is MISSING or value is None:
            if f.required:
                raise InvalidInput(f.name, "is required")
            if f.default is not MISSING:
                out[f.name] = f.default
            continue
        if isinstance(value, float) and f.kind == "int" and not math.isfinite(value):
            raise InvalidInput(f.name, "must be an integer")
        out[f.name] = check(f, value, config, f.name in text_fields or f.where != "body")
    return out


def _resolved(value: int | str | None, config: Config | None) -> int | None:
    """A limit as a number; one naming a setting is unknown (None) without a config."""
    if isinstance(value, str):
        return getattr(config, value) if config is not None else None
    return value


def json_schema(f: Field, config: Config | None = None) -> dict[str, Any]:
    """OpenAPI (JSON Schema) of one field: the same rules :func:`check` applies, with limits
    that name a setting resolved from ``config`` (left out without one). A fuzzer generating
    from it produces values the validator accepts (except JSON over its byte limit, which JSON
    Schema cannot express: that limit is in the description)."""
    if f.kind == "str":
        s: dict[str, Any] = {"type": "string"}
        s["pattern"] = f"^(?:{f.pattern})$" if f.pattern else f"^{LINE}$"
        if f.min_len:
            s["minLength"] = f.min_len
        if (most := _resolved(f.max_len, config)) is not None:
            s["maxLength"] = most
    elif f.kind == "int":
        s = {"type": "integer", "minimum": f.lo if f.lo is not None else -MAX_SAFE_INT,
             "maximum": f.hi if f.hi is not None else MAX_SAFE_INT}
    elif f.kind == "bool":
        s = {"type": "boolean"}
    elif f.kind == "enum":
        s = {"type": "string", "enum": list(f.choices)}
    elif f.kind == "strlist":
        assert f.item is not None
        s = {"type": "array", "items": json_schema(f.item, config)}
        if (most := _resolved(f.max_items, config)) is not None:
            s["maxItems"] = most
    else:  # json: any value; null means "absent", so a required one is not null
        s = {"not": {"type": "null"}} if f.required else {}
    if f.doc:
        s["description"] = f.doc
    if f.default is not MISSING:
        s["default"] = f.default
    return s


def describe(f: Field, config: Config) -> list[str]:
    """The rules of one field in words, limits resolved with ``config``, for the /docs page."""
    out: list[str] = []
    if f.kind in ("str", "strlist"):
        g = f.item if f.kind == "strlist" and f.item is not None else f
        most = _limit(g.max_len, config)
        if g.min_len and most is not None:
            out.append(f"{g.min_len} to {most} characters")
        elif most is not None:
            out.append(f"at most {most} characters")
        elif g.min_len:
            out.append(f"at least {g.min_len} characters")
        out.append("no control, bidirectional formatting or invisible (zero-width or format) "
                   "characters" if g.pattern == NICK else
                   f"matches ``{g.pattern}``" if g.pattern else "no control characters")
        if f.kind == "strlist":
            items = _limit(f.max_items, config)
            out.insert(0, "list of strings" + (f", at most {items}" if items is not None else ""))
    elif f.kind == "int":
        lo = f.lo if f.lo is not None else -MAX_SAFE_INT
        hi = f.hi if f.hi is not None else MAX_SAFE_INT
        out.append(f"{lo} to {hi}")
    elif f.kind == "enum":
        out.append("one of " + ", ".join(f.choices))
    elif f.kind == "json":
        most = _limit(f.max_bytes, config)
        out.append("any JSON value" + ("" if f.required else " or null")
                   + (f", at most {most} bytes encoded" if most is not None else ""))
    if f.default is not MISSING:
        out.append(f"default {json.dumps(f.default)}")
    return out
