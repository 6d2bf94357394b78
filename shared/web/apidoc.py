"""The API reference as client writers read it, built from the operation registry.

Operations are grouped by area in a reading order (first how to get a credential, then what to
do with it). Each one's rules come from its declaration: fields and their limits (settings
resolved from the running Config, so the numbers are the deployment's), who may call, its
example, and its docstring (summary line; description; an ``Errors:`` list). The same model feeds
``/docs`` (shared/web/pages.py), ``/openapi.json`` (shared/web/openapi.py) and docs/API.md,
written by ``python -m shared.web.apidoc`` (a test checks the committed file matches).

Docstring markup: paragraphs split by blank lines, ``- `` starts a list item, ````code````.
A setting's environment name (``MAILBOX_MAX``) is shown as its configured value. After the
description, a line ``Errors:`` starts the list of errors (``- ``code`` (404): when``), and a
line ``Internals:`` notes for maintainers that the docs leave out.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from shared.config import Config
from shared.registry import ADMIN, ANYONE, PLAYER, Operation, load
from shared.schema import describe

PATH = Path(__file__).resolve().parents[2] / "docs" / "API.md"


@dataclass(frozen=True)
class Area:
    key: str
    title: str
    intro: str
    prefixes: tuple[str, ...]  # operation name prefixes (before the first dot) it holds
    order: tuple[str, ...]  # reading order; operations not listed follow, by name


AREAS = (
    Area("players", "Players and sessions",
         "A player registers once, then logs in to get a session token. The token is the "
         "player's credential for mail and their own settings, and what a game server passes "
         "to bring the player online.",
         ("player", "session"),
         ("player.register", "session.login", "session.logout", "player.get", "player.password",
          "player.settings.get", "player.settings.set", "player.settings.delete",
          "player.delete")),
    Area("servers", "Game servers",
         "An admin registers each game server and hands its id and key to the server's "
         "operator. The key is the server's credential for everything below.",
         ("server",),
         ("server.create", "server.rotate_key", "server.settings.get", "server.settings.set",
          "server.settings.delete", "server.delete")),
    Area("status", "Server status and players online",
         "A game server sends a heartbeat at least every STATUS_TTL seconds; while it does, it is "
         "live: listed (when public) and able to bring players online. Players are online on one "
         "server at a time.",
         ("status", "presence"),
         ("status.update", "status.list", "status.get", "presence.join", "presence.leave")),
    Area("boards", "Leaderboards",
         "An admin creates a board with its order and operator, and may give it seasons: a "
         "fresh board every day, week or month, with the past seasons kept readable. Game "
         "servers submit scores for players online on them; anyone may read the rankings.",
         ("board", "record", "season"),
         ("board.create", "board.list", "record.submit", "record.top", "record.player",
          "record.of_player", "season.list", "season.records")),
    Area("messages", "Messages between servers",
         "Game servers message one another directly, all at once, or through channels they join. "
         "Each server has an inbox it reads with a cursor; the relay also pushes new entries to a "
         "connected server as they arrive.",
         ("message", "channel"),
         ("message.send", "message.read", "channel.join", "channel.leave")),
    Area("mail", "Mail between players",
         "Players write to each other by name, also while offline. A mail is stored before the "
         "answer; the recipient's game server gets a notice when they are online.",
         ("mail",),
         ("mail.send", "mail.unread_count", "mail.list", "mail.read", "mail.delete")),
    Area("moderation", "Moderation",
         "Bans keep a player or an address off every server, or off one server; they are pushed "
         "live to the servers in scope. A game server checks a nickname before it is used: "
         "registered names and clan tags are protected. Every admin and moderation action is "
         "in the audit log.",
         ("ban", "name", "audit"),
         ("ban.create", "ban.check", "ban.list", "ban.lift", "name.check", "audit.list")),
    Area("clans", "Clans",
         "A player founds a clan and owns its tag; members join by invitation (the owner "
         "invites, the player accepts). A player is in at most one clan.",
         ("clan",),
         ("clan.create", "clan.get", "clan.invite", "clan.accept", "clan.remove",
          "clan.delete", "clan.transfer")),
    Area("webhooks", "Webhooks",
         "An admin subscribes a URL to events (new #1 records, season ends, servers online and "
         "offline, bans); the worker POSTs each event, signed, and retries for an hour.",
         ("webhook",),
         ("webhook.create", "webhook.list", "webhook.deliveries", "webhook.delete")),
    Area("mod", "Known builds of the (server)² core",
         "The released (server)² core checks its own file with the backend when it starts: "
         "a UDP verify answered by the relay, and the newest version read over HTTP. An admin "
         "registers the known builds, each core file's SHA-1 with its version.",
         ("mod",),
         ("mod.build.set", "mod.build.list", "mod.build.delete")),
    Area("other", "Other operations", "", (), ()),
)
# The bearer credential each kind of caller sends, as the examples name it.
CREDENTIAL = {"admin": "$ADMIN_TOKEN", "server": "$SERVER_KEY", "player": "$PLAYER_TOKEN"}
KINDS = {"str": "string", "int": "integer", "bool": "boolean", "json": "JSON",
         "strlist": "list", "enum": "string"}


def area_of(op: Operation) -> Area:
    prefix = op.name.split(".", 1)[0]
    return next((a for a in AREAS if prefix in a.prefixes), AREAS[-1])


def grouped(registry: dict[str, Operation]) -> list[tuple[Area, list[Operation]]]:
    """Areas in reading order, each with its operations in reading order; empty areas left out."""
    out = []
    for area in AREAS:
        ops = [op for op in registry.values() if area_of(op) is area]
        rank = {name: i for i, name in enumerate(area.order)}
        ops.sort(key=lambda op: (rank.get(op.name, len(rank)), op.name))
        if ops:
            out.append((area, ops))
    return out


def who(op: Operation) -> str:
    """Who may call, in words."""
    if op.auth == ANYONE:
        return "anyone"
    names = {"admin": "the admin", "server": "a game server", "player": "a player"}
    kinds = " or ".join(names[k] for k in sorted(op.auth, key=["player", "server", "admin"].index))
    if op.owner is None:
        return kinds
    own = {"name": "player", "id": "server"}.get(op.owner, op.owner)
    if op.auth == PLAYER | ADMIN:
        return f"the {own} themself, or the admin"
    return f"{kinds}, for its own {op.owner} only" if own == "server" else \
        f"{kinds}, for their own {op.owner} only"


def caller_kind(op: Operation) -> str:
    """The kind of caller the example uses: the most ordinary one the operation admits."""
    for kind in ("player", "server", "admin"):
        if kind in op.auth and op.auth != ANYONE:
            return kind
    return "anonymous"


# --- text --------------------------------------------------------------------------------------
_SETTINGS = {f.metadata["env"]: f.name for f in dataclasses.fields(Config)
             if f.metadata["kind"] is int and "_" in f.metadata["env"]}
# a name followed by ``=`` is a setting to set (``WEBHOOK_ALLOW_PRIVATE=1``), not a value to show
_SETTING_RE = re.compile(r"\b(" + "|".join(sorted(_SETTINGS, key=len, reverse=True))
                         + r")\b(?!=)")
_CODE_RE = re.compile(r"``(.+?)``")
_ERROR_RE = re.compile(r"-\s+``(\w+)``\s+\((\d{3})\):\s*(.*)")


def with_settings(text: str, config: Config) -> str:
    """``STATUS_TTL`` and the other settings' environment names replaced by their values (not
    where the text says to set one: ``NAME=value`` stays as written); a whole number of days or
    hours of seconds said so (``2592000 seconds`` reads ``30 days``)."""
    text = _SETTING_RE.sub(lambda m: str(getattr(config, _SETTINGS[m.group(1)])), text)
    return re.sub(r"\b(\d+) seconds\b", lambda m: _duration(int(m.group(1))), text)


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}" + ("s" if n != 1 else "")
    return f"{seconds} seconds"


def inline_markdown(text: str, config: Config) -> str:
    return _CODE_RE.sub(r"`\1`", with_settings(text, config))


def blocks(text: str) -> list[tuple[str, list[str]]]:
    """Paragraphs (``("p", [text])``) and lists (``("ul", [item, ...])``) of a docstring part.
    A line starting ``- `` starts a list item; the lines after it continue that item until a
    blank line."""
    out: list[tuple[str, list[str]]] = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        para: list[str] = []
        items: list[str] = []
        for line in (line.strip() for line in chunk.splitlines()):
            if line.startswith("- "):
                items.append(line[2:])
            elif items:
                items[-1] += " " + line
            elif line:
                para.append(line)
        if para:
            out.append(("p", [" ".join(para)]))
        if items:
            out.append(("ul", items))
    return out


def inline_html(text: str, config: Config) -> Markup:
    """One run of text as HTML: escaped, ````x```` as <code>, settings as their values."""
    parts = _CODE_RE.split(with_settings(text, config))
    return Markup("").join(escape(p) if i % 2 == 0 else Markup("<code>%s</code>") % p
                           for i, p in enumerate(parts))


def to_html(text: str, config: Config) -> Markup:
    out = []
    for kind, items in blocks(text):
        if kind == "p":
            out.append(Markup("<p>%s</p>") % inline_html(items[0], config))
        else:
            lis = Markup("").join(Markup("<li>%s</li>") % inline_html(i, config) for i in items)
            out.append(Markup("<ul>%s</ul>") % lis)
    return Markup("\n").join(out)


def to_markdown(text: str, config: Config) -> str:
    """CommonMark (OpenAPI descriptions, docs/API.md): ````x```` becomes ```x```."""
    out = []
    for kind, items in blocks(text):
        lines = items if kind == "p" else [f"- {i}" for i in items]
        out.append("\n".join(inline_markdown(line, config) for line in lines))
    return "\n\n".join(out)


# --- one operation -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ErrorDoc:
    code: str
    status: int
    when: str


def _parts(op: Operation) -> tuple[str, str]:
    """The docstring's description and its ``Errors:`` list. An ``Internals:`` section (notes for
    maintainers: storage, round trips) is left out of the docs. Each heading is a line alone."""
    sections = re.split(r"^\s*(Errors|Internals):\s*$", op.description, flags=re.M)
    found = dict(zip(sections[1::2], sections[2::2], strict=True))
    return sections[0].strip(), found.get("Errors", "")


def description(op: Operation) -> str:
    return _parts(op)[0]


def errors(op: Operation) -> list[ErrorDoc]:
    """Errors the operation may answer: its declared ones, then those any call of its kind may
    get (bad input, missing or wrong credential)."""
    out = []
    for kind, items in blocks(_parts(op)[1]):
        for item in items:
            m = _ERROR_RE.fullmatch("- " + item) if kind == "ul" else None
            if m is None:
                raise ValueError(f"{op.name}: an Errors: item reads '- ``code`` (status): when'"
                                 f", not {item!r}")
            out.append(ErrorDoc(m.group(1), int(m.group(2)), m.group(3)))
    if op.fields:
        out.append(ErrorDoc("invalid_input", 400, "a field is missing or breaks its rules (the "
                            "message names the field)."))
    if op.auth != ANYONE:
        out.append(ErrorDoc("unauthenticated", 401, "no bearer credential, or not a valid one."))
        out.append(ErrorDoc("forbidden", 403, "the credential is of a kind that may not call "
                            "this" + (f", or names another {op.owner}" if op.owner else "") + "."))
    return out


@dataclass(frozen=True)
class FieldDoc:
    name: str
    where: str
    type: str
    required: bool
    rules: list[str]
    doc: str


def field_docs(op: Operation, config: Config) -> list[FieldDoc]:
    return [FieldDoc(f.name, f.where, KINDS[f.kind], f.required or f.where == "path",
                     describe(f, config), with_settings(f.doc, config))
            for f in op.fields]


@dataclass(frozen=True)
class Example:
    method: str
    url: str  # path and query, filled in
    body: dict[str, Any] | None
    credential: str | None  # the $VARIABLE the curl line uses
    status: int
    response: Any
    request: dict[str, Any]

    @property
    def status_line(self) -> str:
        return f"{self.status} {HTTPStatus(self.status).phrase}"

    def curl(self) -> str:
        lines = [f'curl -X {self.method} "$API{self.url}"' if self.method != "GET"
                 else f'curl "$API{self.url}"']
        if self.credential:
            lines.append(f'-H "Authorization: Bearer {self.credential}"')
        if self.body is not None:
            body = json.dumps(self.body, ensure_ascii=False).replace("'", "'\\''")
            lines += ['-H "Content-Type: application/json"', f"-d '{body}'"]
        return " \\\n  ".join(lines)

    def relay(self, name: str) -> str:
        return json.dumps({"cmd": name, "args": self.request}, ensure_ascii=False)

    def response_json(self) -> str:
        return json.dumps(self.response, indent=2, ensure_ascii=False)


def example(op: Operation) -> Example | None:
    if op.example is None:
        return None
    request = dict(op.example["request"])
    where = {f.name: f.where for f in op.fields}
    url = re.sub(r"\{(\w+)\}", lambda m: str(request[m.group(1)]), op.path)
    query = [f"{k}={_query_value(v)}" for k, v in request.items() if where.get(k) == "query"]
    body = {k: v for k, v in request.items() if where.get(k) == "body"}
    has_body = any(f.where == "body" for f in op.fields)
    kind = caller_kind(op)
    return Example(op.method, url + ("?" + "&".join(query) if query else ""),
                   body if has_body else None, CREDENTIAL.get(kind),
                   int(op.example.get("status", op.status)), op.example.get("response"), request)


def _query_value(value: Any) -> str:
    return ("1" if value else "0") if isinstance(value, bool) else str(value)


# --- docs/API.md -------------------------------------------------------------------------------
def render(registry: dict[str, Operation] | None = None, config: Config | None = None) -> str:
    """docs/API.md: every operation by area, with the default configuration's limits."""
    registry, config = registry or load(), config or Config()
    out = ["# SSMGlobal API\n",
           "Generated from the operation registry by `python -m shared.web.apidoc`; limits are the "
           "defaults (a deployment's own values are on its `GET /docs` page, and in "
           "`GET /openapi.json`). Every operation is also a relay command under its name "
           "(case-insensitive) or an alias.\n",
           "Requests and answers are JSON. Send your credential as `Authorization: Bearer "
           "<token>`: the admin token, a game server's key (from `server.create`) or a player's "
           "session token (from `session.login`). Errors answer `{\"error\": {\"code\", "
           "\"message\"}}`.\n"]
    for area, _ops in grouped(registry):
        out.append(f"- [{area.title}](#{_anchor(area.title)})")
    out.append("")
    for area, ops in grouped(registry):
        out.append(f"## {area.title}\n")
        if area.intro:
            out.append(with_settings(area.intro, config) + "\n")
        for op in ops:
            out += _op_markdown(op, config)
    return "\n".join(out).rstrip() + "\n"


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def _op_markdown(op: Operation, config: Config) -> list[str]:
    aliases = "".join(f", `{a}`" for a in op.aliases)
    out = [f"### `{op.method} {op.path}` — {op.name}\n",
           f"{to_markdown(op.summary, config)}\n",
           f"Who may call: {who(op)}. Relay: `{op.name}`{aliases}. Success: {op.status}.\n"]
    if text := description(op):
        out.append(to_markdown(text, config) + "\n")
    if op.fields:
        out.append("| field | in | type | required | rules | notes |\n|---|---|---|---|---|---|")
        for f in field_docs(op, config):
            rules, doc = ("; ".join(inline_markdown(r, config) for r in f.rules),
                          inline_markdown(f.doc, config))
            out.append(f"| `{f.name}` | {f.where} | {f.type} | {'yes' if f.required else 'no'} | "
                       + " | ".join(t.replace("|", "\\|") for t in (rules, doc)) + " |")
        out.append("")
    if errs := errors(op):
        out.append("Errors:\n\n" + "\n".join(f"- `{e.code}` ({e.status}): "
                                             + to_markdown(e.when, config) for e in errs) + "\n")
    if ex := example(op):
        out.append(f"```sh\n{ex.curl()}\n```\n")
        shown = ex.response_json() if ex.response is not None else "(no body)"
        out.append(f"Answer `{ex.status_line}`:\n\n```json\n{shown}\n```\n")
    return out


if __name__ == "__main__":
    PATH.parent.mkdir(exist_ok=True)
    PATH.write_text(render())
    sys.stdout.write(f"wrote {PATH}\n")
