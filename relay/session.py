"""One connection's conversation: mode, caller, guards; no sockets.

:meth:`Session.on_line` takes one received line and returns a :class:`Step`: bytes to write,
whether to close, and optionally blocking ``work`` (an operation through ``shared.dispatch``)
that the I/O layer runs in the thread pool before handing its result to ``then`` on the loop.
Every operation in the registry is a command. The relay's own commands (MODE, HELP, QUIT, HW,
AUTH, LOGIN, TOKEN, RESUME) each declare themselves once, with :func:`builtin` on their
``cmd_*`` method (aiosmtpd's ``@syntax`` on ``smtp_*``); :data:`BUILTINS` is built from those.
The caller a connection authenticated as is what operations see.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from relay import human as h
from relay import protocol as p
from shared.auth import ANONYMOUS, Caller, sha256
from shared.errors import ApiError, Internal, Unauthenticated, Unavailable
from shared.redis_conn import REDIS_ERRORS
from shared.schema import STREAM_CURSOR

log = logging.getLogger("ssm.relay")

AUTH_TRIES = 3
CURSOR = re.compile(STREAM_CURSOR)


class Expired(Unauthenticated):
    """The key or session a connection authenticated with is no longer valid."""


@dataclass(slots=True)
class Step:
    out: bytes = b""
    close: bool = False
    work: Callable[[], Any] | None = None  # blocking; run in the thread pool
    then: Callable[[Any], Step] | None = None  # on the loop, with work's result


@dataclass(frozen=True)
class Builtin:
    """A relay built-in command, as its ``cmd_*`` method declares it with :func:`builtin`."""

    name: str  # the method's name without ``cmd_``, upper case
    usage: str  # HELP's line, and the ``Usage:`` error
    fields: tuple[str, ...]  # the names JSON-object args may use, in word order
    before_auth: bool  # answered in SERVER mode before AUTH
    run: Callable[[Session, list[str]], Step]


def builtin(usage: str, fields: tuple[str, ...] = (), before_auth: bool = False
            ) -> Callable[[Callable[[Session, list[str]], Step]],
                          Callable[[Session, list[str]], Step]]:
    """Declare a ``cmd_*`` method a built-in: its usage, JSON field names, and whether SERVER
    mode answers it before AUTH."""
    def declare(method: Callable[[Session, list[str]], Step]
                ) -> Callable[[Session, list[str]], Step]:
        method.builtin = (usage, fields, before_auth)  # type: ignore[attr-defined]
        return method
    return declare


class Session:
    """Per-connection state. ``hub`` is the process (see relay.server.Relay)."""

    __slots__ = ("hub", "ip", "mode", "caller", "secret", "fails", "tail", "last_id",
                 "replaying", "replay_gen", "mail_seq", "rid")

    def __init__(self, hub: Any, ip: str) -> None:
        self.hub, self.ip = hub, ip
        self.mode: str | None = None
        self.caller: Caller = ANONYMOUS
        self.secret: str | None = None  # the key or token behind caller, re-checked per command
        self.fails = 0  # failed AUTH and TOKEN attempts
        self.tail = self.last_id = "0-0"  # pushes: inbox id at AUTH, last id delivered
        self.replaying = False
        self.replay_gen = 0  # bumped to stop a running replay (new RESUME, unsubscribe)
        self.mail_seq = 0  # HUMAN players: last mailbox sequence announced
        self.rid: Any = p._NOTHING  # the "id" of the command being answered (one at a time)

    # --- replies in the connection's mode -------------------------------------------------------
    @property
    def human(self) -> bool:
        return self.mode == "HUMAN"

    def ok(self, msg: str, data: Any = p._NOTHING, close: bool = False) -> Step:
        """A JSON OK line (any mode), with the command's ``id`` echoed if it sent one."""
        return Step(p.ok(msg, data, self.rid), close)

    def reply(self, msg: str, data: Any = p._NOTHING, lines: list[str] | None = None) -> Step:
        if self.human:
            if lines is None:
                lines = [msg] if data is p._NOTHING else h.lines(None, data)
            return Step(p.text(lines) + p.PROMPT)
        return self.ok(msg, data)

    def fail(self, msg: str, code: str | None = None, retry_after: int | None = None,
             close: bool = False) -> Step:
        if self.human:
            return Step(p.human_error(msg) + (b"" if close else p.PROMPT), close)
        return Step(p.error(msg, code, retry_after, self.rid), close)

    def usage_error(self, name: str) -> Step:
        return self.fail(p.USAGE.format(BUILTINS[name].usage), "invalid_input")

    def failed(self, exc: BaseException) -> Step:
        """The exception barrier around every command: an error line, never a crash."""
        if isinstance(exc, Expired):  # revoked: say so and end the connection (docs/RELAY.md)
            self.hub.forget(self)
            self.caller, self.secret = ANONYMOUS, None
            self.hub.recount(self)
            return self.fail(p.REVOKED.format(p.REVOKED_ANY), exc.code, close=True)
        if isinstance(exc, REDIS_ERRORS):
            log.warning("redis unavailable: %s", type(exc).__name__)
            exc = Unavailable()
        elif not isinstance(exc, ApiError):
            log.error("relay command failed", exc_info=exc)
            exc = Internal()
        return self.fail(exc.message, exc.code, exc.retry_after)

    # --- input ------------------------------------------------------------------------------
    def on_line(self, raw: bytes | None) -> Step:
        if raw is None:
            return self.fail(p.LINE_TOO_LONG, "too_large")
        try:
            line = raw.decode()
        except UnicodeDecodeError:
            return self.fail(p.BAD_UTF8, "invalid_input")
        self.rid = p._NOTHING
        if not line.strip():
            return Step(p.PROMPT if self.human else b"")
        try:
            if self.mode is None:
                cmd = p.parse_any(line)
                if cmd.name != "MODE":
                    return Step(p.error(p.NO_MODE, rid=cmd.rid), close=True)
            elif self.human:
                cmd = p.parse_text_command(line)
            else:
                cmd = p.parse_json(line)
        except p.ProtocolError as err:
            self.rid = err.rid
            if self.mode is None:
                return Step(p.error(p.NO_MODE, rid=self.rid), close=True)
            return self.fail(str(err), err.code)
        self.rid = cmd.rid
        try:
            return self.command(cmd.name, cmd.args, cmd.key, cmd.as_)
        except Exception as exc:  # the barrier: one bad command never takes the relay down
            return self.failed(exc)

    @property
    def needs_auth(self) -> bool:
        """SERVER mode answers only the ``before_auth`` built-ins until AUTH."""
        return self.mode == "SERVER" and self.caller.kind not in ("server", "admin")

    def command(self, name: str, args: str | dict[str, Any], key: str | None,
                as_: str | None = None) -> Step:
        """Run one command. ``as_`` (a JSON command's ``"as"``) is a player session token: that
        one operation runs as its player, the connection keeping its own caller
        (docs/RELAY.md)."""
        cmd = BUILTINS.get(name)
        if cmd is not None:
            if self.needs_auth and not cmd.before_auth:
                return self.fail(p.NEED_AUTH, "unauthenticated")
            if as_ is not None:
                return self.fail(p.AS_BUILTIN.format(name), "invalid_input")
            if isinstance(args, dict):
                args = " ".join(str(args[k]) for k in cmd.fields if args.get(k) is not None)
            return cmd.run(self, args.split())
        op = self.hub.commands.get(name)
        if op is None:
            return self.fail(p.NOT_FOUND)
        if self.needs_auth:
            return self.fail(p.NEED_AUTH, "unauthenticated")
        typed = h.WORDS.get(op.name) if self.human else None
        text_fields: frozenset[str]
        if isinstance(args, dict):
            raw, text_fields = args, frozenset()
        elif typed is not None:  # HUMAN mode's own words for this operation (MAIL's subject)
            raw = typed.parse(args)
            text_fields = frozenset(raw)
        else:
            raw, text_fields = p.words(op.fields, args)
        caller, secret, hub, ip = self.caller, self.secret, self.hub, self.ip
        if self.human:  # with the names of the servers the answer names (one read at most)
            return Step(work=lambda: hub.with_names(
                            hub.run(op, caller, secret, ip, raw, text_fields, key).body),
                        then=lambda got: self.result(op.name, *got))
        if as_ is not None:  # the answer is the player's: the connection's caller is untouched
            return Step(work=lambda: hub.run(op, caller, secret, ip, raw, text_fields, key, as_),
                        then=lambda outcome: Session.result(self, op.name, outcome.body))
        return Step(work=lambda: hub.run(op, caller, secret, ip, raw, text_fields, key),
                    then=lambda outcome: self.result(op.name, outcome.body))

    def result(self, name: str, body: Any, names: dict[str, str] | None = None) -> Step:
        """An operation's answer; no ``data`` for a 204 (HUMAN: ``OK``)."""
        if body is None:
            return self.reply(name, lines=["OK"]) if self.human else self.ok(name)
        if self.human:
            return self.reply(name, lines=h.lines(name, body, names))
        return self.reply(name, body)

    # --- built-in commands (declared once each; BUILTINS is built from them, in this order) ---
    @builtin("MODE <SERVER|CLIENT|HUMAN|LIST>", ("mode",), before_auth=True)
    def cmd_mode(self, words: list[str]) -> Step:
        mode = words[0].upper() if words else ""
        if mode == "LIST":
            return self.reply(" ".join(p.MODES)) if self.mode else self.ok(" ".join(p.MODES))
        if mode not in p.MODES:
            shown = (words[0] if words else "")[:32]
            if self.mode is None:
                return Step(p.error(p.INVALID_MODE.format(shown), rid=self.rid), close=True)
            return self.fail(p.INVALID_MODE.format(shown))
        if self.mode is not None and mode != self.mode:
            return self.fail(p.MODE_SET.format(self.mode))
        self.mode = mode
        if mode == "HUMAN":
            return Step(p.text([p.WELCOME]) + p.PROMPT)
        return self.ok(p.MODE_OK.format(mode))

    @builtin("HELP [command]", ("command",), before_auth=True)
    def cmd_help(self, words: list[str]) -> Step:
        hub = self.hub
        if self.human:  # an index, a topic, every command, or one (the JSON modes: below)
            lines = self.human_help(words[0].upper() if words else "")
            return self.fail(p.NOT_FOUND) if lines is None else self.reply("", lines=lines)
        if words:
            name = words[0].upper()
            if name in BUILTINS:
                return self.reply(BUILTINS[name].usage)
            op = hub.commands.get(name)
            if op is None:
                return self.fail(p.NOT_FOUND)
            return self.reply(hub.usage(op))
        return self.ok(" ".join(hub.help_names))

    def human_help(self, name: str) -> list[str] | None:
        """HUMAN mode's HELP: the index; ``ALL``; a command's usage and summary, followed by
        the topic of the same name if there is one (``HELP mail``); or a topic."""
        hub = self.hub
        if not name:
            return hub.help_index
        if name == h.HELP_ALL:
            return [h.HELP_TITLE, *hub.help_lines, h.SOURCE]
        topic = hub.help_topics.get(name, [])
        if name in BUILTINS:
            return [BUILTINS[name].usage, *topic]
        op = hub.commands.get(name)
        if op is not None:
            return [hub.usage(op, human=True), hub.summaries[op.name], *topic]
        return topic or None

    @builtin("QUIT", before_auth=True)
    def cmd_quit(self, words: list[str]) -> Step:
        if self.human:
            return Step(p.text([p.GOODBYE]), close=True)
        return self.ok(p.GOODBYE, close=True)

    @builtin(f"HW [n] (n <= {p.HW_MAX})", ("n",), before_auth=True)
    def cmd_hw(self, words: list[str]) -> Step:
        n = words[0] if words else "1"
        if not (n.isascii() and n.isdigit()) or not 1 <= int(n) <= p.HW_MAX:
            return self.fail(p.HW_RANGE, "invalid_input")
        if self.human:
            return self.reply("", lines=[p.HELLO] * int(n))
        return self.ok(" ".join([p.HELLO] * int(n)))

    @builtin("AUTH <server_id> <key>", ("id", "key"), before_auth=True)
    def cmd_auth(self, words: list[str]) -> Step:
        if len(words) != 2:
            return self.usage_error("AUTH")
        hub, (server_id, key) = self.hub, words

        def done(result: tuple[Caller | None, str]) -> Step:
            caller, tail = result
            if caller is None:
                return self.strike(p.BAD_SERVER_KEY)
            return self._become(caller, key, tail, p.AUTHENTICATED.format(f"server {caller.id}"),
                                {"id": caller.id, "name": caller.name, "cursor": tail})
        return Step(work=lambda: hub.check_server(server_id, key), then=done)

    @builtin("LOGIN <name> <password>", ("name", "password"))
    def cmd_login(self, words: list[str]) -> Step:
        if len(words) != 2:
            return self.usage_error("LOGIN")
        hub, caller, secret = self.hub, self.caller, self.secret
        keep = self.mode == "SERVER"  # a server logs players in for them and keeps its identity
        raw = {"name": words[0], "password": words[1]}

        def done(result: tuple[Any, int]) -> Step:
            body = result[0].body
            if keep:
                return self.result("session.login", body)
            who = Caller("player", body["player"]["id"], body["player"]["name"],
                         sha256(body["token"]))
            return self._become(who, body["token"], str(result[1]),
                                p.LOGGED_IN.format(who.name), body)
        return Step(work=lambda: hub.login(caller, secret, self.ip, raw, not keep and self.human),
                    then=done)

    @builtin("TOKEN <token>", ("token",), before_auth=True)
    def cmd_token(self, words: list[str]) -> Step:
        if len(words) != 1:
            return self.usage_error("TOKEN")
        hub, token = self.hub, words[0]

        def done(result: tuple[Caller | None, str]) -> Step:
            who, position = result
            if who is None:
                return self.strike(p.BAD_TOKEN)
            label = {"server": f"server {who.id}", "player": f"player {who.name}"}
            return self._become(who, token, position,
                                p.AUTHENTICATED.format(label.get(who.kind, who.kind)),
                                {"kind": who.kind, "id": who.id, "name": who.name})
        return Step(work=lambda: hub.resolve(token, self.mode), then=done)

    @builtin("RESUME <stream id> (0 = everything kept)", ("id",))
    def cmd_resume(self, words: list[str]) -> Step:
        if self.mode != "SERVER" or self.caller.kind != "server":
            return self.fail(p.RESUME_NEEDS_AUTH, "unauthenticated")
        if len(words) != 1 or not CURSOR.fullmatch(words[0]):
            return self.usage_error("RESUME")
        hub, caller, secret, after = self.hub, self.caller, self.secret, words[0]

        def done(_: Any) -> Step:  # the key is still valid (else Expired: see ``failed``)
            hub.fanout.resume(self, after)
            return self.reply(p.RESUMING.format(after))
        return Step(work=lambda: hub.fresh(caller, secret), then=done)

    # --- who the connection is ----------------------------------------------------------------
    def strike(self, msg: str) -> Step:
        """A failed AUTH or TOKEN: an error; the AUTH_TRIES-th (of both) closes, in any mode."""
        self.fails += 1
        return self.fail(msg, "unauthenticated", close=self.fails >= AUTH_TRIES)

    def _become(self, caller: Caller, secret: str, position: str, msg: str, data: Any) -> Step:
        """Switch the connection's caller; start pushes (SERVER) or mail notices (HUMAN)."""
        self.hub.forget(self)
        self.caller, self.secret = caller, secret
        self.hub.recount(self)
        if self.mode == "SERVER" and caller.kind == "server":
            self.hub.fanout.subscribe(self, caller.id, position)
        elif self.human and caller.kind == "player":
            self.mail_seq = int(position or 0)
            self.hub.mailwatch.add(self, caller.lname)
        return self.reply(msg, data, lines=[msg] + h.lines(None, data) if self.human else None)

    # --- pushes from the process ---------------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Write unasked bytes (a push); the I/O layer overrides this."""
        raise NotImplementedError

    def send_replay(self, data: bytes) -> None:
        """Write a replayed entry (the replay paces itself with ``drained``)."""
        self.send(data)

    async def drained(self) -> None:
        """Return once the bytes waiting for the client are few; the I/O layer overrides this."""


def _collect(cls: type) -> dict[str, Builtin]:
    """The built-ins ``cls`` declares, in the order its methods are defined."""
    out: dict[str, Builtin] = {}
    for name, method in vars(cls).items():
        if name.startswith("cmd_") and hasattr(method, "builtin"):
            usage, fields, before_auth = method.builtin
            out[name[4:].upper()] = Builtin(name[4:].upper(), usage, fields, before_auth, method)
    return out


BUILTINS: dict[str, Builtin] = _collect(Session)
