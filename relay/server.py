"""The relay's I/O: one asyncio process, a light Protocol object per connection, no task each.

:class:`Relay` is the process: config, the operation registry as commands, the thread pool
that runs operations (so none stalls the loop), connection limits, the idle sweep, the push
fan-out, the mail watch and revocations. :class:`Connection` is a
:class:`~relay.session.Session` bound to a transport: bounded reads (LineReader), one bounded
outbound buffer (the transport's: reading pauses past OUT_HIGH, pushes close the client past
RELAY_SEND_BUFFER_MAX), commands handled one at a time per connection, in order.

Slots (docs/RELAY.md): anonymous and player connections share RELAY_MAX_CLIENTS; a connection
authenticated with a server key moves to slots of its own, at most
RELAY_CONNECTIONS_PER_SERVER per key, so a flood of anonymous sockets never keeps a game server
out once it has connected. A connection that sends no ``MODE`` within RELAY_HANDSHAKE_TIMEOUT
is closed, and empty lines are not activity.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import logging
import resource
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from relay import human as h
from relay import protocol as p
from relay.fanout import FanOut
from relay.legacy_udp import LegacyUDP
from relay.mailwatch import MailWatch
from relay.session import BUILTINS, Expired, Session, Step
from shared import auth, keys, metrics
from shared.auth import ANONYMOUS
from shared.config import Config
from shared.dispatch import Ctx, Outcome, run
from shared.errors import Unauthenticated
from shared.redis_conn import REDIS_OR_OS_ERRORS, connect_data, preload, queue_for
from shared.registry import Operation, load
from shared.storage import modbuilds
from shared.web.apidoc import grouped, with_settings

log = logging.getLogger("ssm.relay")

OUT_HIGH = 256 * 1024  # bytes waiting for one client past which no more commands are read
DRAIN_POLL = 0.01  # seconds between checks while a replay waits for a client to read
OWN_ACTS = frozenset({"session.logout", "player.delete"})  # a player ending their own session


class Relay:
    """One relay process: what every connection shares."""

    def __init__(self, config: Config, redis_client: Any = None, queue_client: Any = None
                 ) -> None:
        self.config = config
        # Pushes make long-polls pointless here, and they would hold pool threads.
        self.op_config = dataclasses.replace(config, longpoll_max=0)
        url = config.require_redis()
        self.redis = redis_client or connect_data(config,
                                                  max_connections=config.relay_threads + 8)
        self.queue = queue_client or queue_for(config, self.redis)
        self.pool = ThreadPoolExecutor(config.relay_threads, thread_name_prefix="relay-op")
        self.commands: dict[str, Operation] = {}
        for op in load().values():
            for name in op.aliases:
                self.commands.setdefault(name, op)
        for op in load().values():
            self.commands[op.name.upper()] = op
        preload(self.redis)
        ops = load().values()
        self.help_names = [*BUILTINS, *sorted(op.name for op in ops),
                           *sorted({a for op in ops for a in op.aliases} - set(BUILTINS))]
        # HUMAN mode's HELP: an index, a topic per API area, every command (HELP ALL)
        self.summaries = {op.name: with_settings(op.summary, config) for op in ops}
        self.help_lines = [f"  {cmd.usage}" for cmd in BUILTINS.values()] + [
            h.help_entry(self.usage(op, human=True), self.summaries[op.name])
            for op in sorted(set(self.commands.values()), key=lambda o: o.name)]
        areas = grouped(load())
        self.help_index = h.help_index((cmd.usage for cmd in BUILTINS.values()),
                                       ((a.key, a.title, len(o)) for a, o in areas))
        self.help_topics = {a.key.upper(): h.help_topic(a.key, a.title, [
            h.help_entry(self.usage(op, human=True), self.summaries[op.name]) for op in o])
            for a, o in areas}
        self.conns: set[Connection] = set()
        self.per_ip: dict[str, int] = {}
        # who holds a key or session: ("server", id) | ("player", lname) -> connections
        self.holders: dict[tuple[str, str], set[Connection]] = {}
        self.server_slots = 0  # connections in servers' own slots (beyond RELAY_MAX_CLIENTS)
        self.fanout = FanOut(url, self.redis, self.pool)
        self.fanout.on_revoke = self.revoked
        self.fanout.holding = lambda: bool(self.holders)
        self.mailwatch = MailWatch(self.redis, self.pool)
        self.server: asyncio.base_events.Server | None = None
        self.legacy_udp: LegacyUDP | None = None
        self.tasks: list[asyncio.Task] = []

    @staticmethod
    def usage(op: Operation, human: bool = False) -> str:
        """``name (alias A) <word> [word] <rest...>``: the words ``protocol.words`` fills, in
        order (``human``: HUMAN mode's words, ``relay.human.WORDS``, where they differ); the
        fields they cannot fill can be given only as JSON-object args."""
        typed = h.WORDS.get(op.name) if human else None
        if typed is not None:
            args, rest = typed.usage, [f for f in op.fields if f.name not in typed.fills]
        else:
            n = p.positional(op.fields)
            args = " ".join(("<{}>" if f.required else "[{}]").format(f.name + "..." * f.rest)
                            for f in op.fields[:n])
            rest = list(op.fields[n:])
        alias = f" (alias {', '.join(op.aliases)})" if op.aliases else ""
        usage = f"{op.name}{alias} {args}".rstrip()
        if rest:
            usage += f" ({', '.join(f.name for f in rest)}: JSON args only)"
        return usage

    # --- blocking work, run in the pool -----------------------------------------------------
    def run(self, op: Operation, caller: auth.Caller, secret: str | None, ip: str, raw: Any,
            text_fields: Any, key: str | None, as_token: str | None = None) -> Outcome:
        who = (self.fresh(caller, secret, op.account) if as_token is None
               else self.acting(caller, secret, as_token, op.account))
        via = caller.id if as_token is not None and caller.kind == "server" else ""
        ctx = Ctx(self.redis, self.op_config, who, ip=ip, queue=self.queue, via=via)
        return run(op, ctx, raw, text_fields=text_fields, idempotency_key=key)

    def acting(self, caller: auth.Caller, secret: str | None, token: str,
               account: tuple[str, ...] = ()) -> auth.Caller:
        """The player a command's ``"as"`` token names, for that one command
        (docs/RELAY.md): the same session check as an HTTP bearer. Anything but a live
        player session (a bad,
        expired or revoked token, a server key, the admin token) is ``Unauthenticated`` for
        this command only: the connection keeps its own caller. A server connection's own
        key is re-checked in the same round trip (``Expired`` when it stopped working)."""
        if caller.kind == "player":
            self.fresh(caller, secret)  # a player acting for another: rare, one more trip
        extra = None
        if caller.kind == "server":
            def extra(pipe: Any, _lname: str) -> None:
                pipe.hget(keys.server(caller.id), "key")
        who, fetched = None, None
        if auth.session_owner(token) is not None:
            try:
                who, fetched = auth.resolve_with(self.redis, self.config, token, account, extra)
            except Unauthenticated:
                who = None
        if who is None or who.kind != "player":
            raise Unauthenticated(p.AS_REFUSED)
        if extra is not None:
            stored = (fetched or [None])[0]
            if not stored or not hmac.compare_digest(stored, auth.sha256(secret or "")):
                raise Expired(p.EXPIRED)
        return who

    def fresh(self, caller: auth.Caller, secret: str | None,
              account: tuple[str, ...] = ()) -> auth.Caller:
        """Re-check a player's session or a server's key (one round trip, as HTTP's auth):
        a logout, password change, key rotation or delete takes effect on the next command."""
        if caller.kind == "server":
            now = auth.check_server_key(self.redis, caller.id, secret or "")
        elif caller.kind == "player":
            now = auth.read_session(self.redis, secret or "", account)
        else:
            return caller
        if now is None:
            raise Expired(p.EXPIRED)
        return now

    def with_names(self, body: Any) -> tuple[Any, dict[str, str]]:
        """``body`` and the names of the servers it names (HUMAN mode shows them): one
        pipelined read, none when it names no server."""
        ids = h.server_ids(body)
        if not ids:
            return body, {}
        pipe = self.redis.pipeline(transaction=False)
        for server_id in ids:
            pipe.hget(keys.server(server_id), "name")
        return body, {i: name for i, name in zip(ids, pipe.execute(), strict=True) if name}

    def _revoke_tail(self) -> str:
        last = self.redis.xrevrange(keys.revocations(), count=1)
        return last[0][0] if last else "0-0"

    def inbox_tail(self, server_id: str) -> str:
        last = self.redis.xrevrange(keys.inbox(server_id), count=1)
        return last[0][0] if last else "0-0"

    def check_server(self, server_id: str, key: str) -> tuple[auth.Caller | None, str]:
        caller = auth.check_server_key(self.redis, server_id, key)
        return caller, self.inbox_tail(server_id) if caller else ""

    def _position(self, caller: auth.Caller, mode: str | None) -> str:
        if mode == "SERVER" and caller.kind == "server":
            return self.inbox_tail(caller.id)
        if mode == "HUMAN" and caller.kind == "player":
            return self.redis.get(keys.mail_seq(caller.lname)) or "0"
        return ""

    def resolve(self, token: str, mode: str | None) -> tuple[auth.Caller | None, str]:
        """The token's caller (None for a bad token) and where its pushes or notices start."""
        try:
            caller = auth.resolve(self.redis, self.config, token)
        except Unauthenticated:
            return None, ""
        return caller, self._position(caller, mode)

    def login(self, caller: auth.Caller, secret: str | None, ip: str, raw: dict[str, str],
              watch_mail: bool) -> tuple[Outcome, str]:
        outcome = self.run(self.commands["SESSION.LOGIN"], caller, secret, ip, raw,
                           frozenset(raw), None)
        lname = (outcome.body or {}).get("player", {}).get("name", "").lower()
        seq = (self.redis.get(keys.mail_seq(lname)) or "0") if watch_mail and lname else "0"
        return outcome, seq

    # --- connections (loop thread) ----------------------------------------------------------
    def admit(self, conn: Connection) -> bytes | None:
        """None to accept ``conn``, else the line that refuses it."""
        limit, per_ip = self.config.relay_max_clients, self.config.relay_max_per_ip
        if limit and len(self.conns) - self.server_slots >= limit:
            return p.error(p.SERVER_FULL)
        if per_ip and self.per_ip.get(conn.ip, 0) >= per_ip:
            return p.error(p.TOO_MANY)
        self.conns.add(conn)
        self._count(conn.ip, 1)
        conn.counted = True
        return None

    def server_room(self, server_id: str, conn: Connection) -> bool:
        """Whether ``conn`` may take one of ``server_id``'s own slots."""
        held = self.holders.get(("server", server_id), set())
        return conn in held or len(held) < self.config.relay_connections_per_server

    def recount(self, conn: Connection) -> None:
        """After ``conn``'s caller changed: a connection authenticated with a server key (AUTH,
        or TOKEN with a server key) stops counting toward RELAY_MAX_PER_IP and
        RELAY_MAX_CLIENTS (it holds one of its server's own slots), so a host running many game
        servers is not capped; one that goes back to anonymous counts again. Also keeps
        ``holders``, which revocations look up."""
        self._hold(conn, (conn.caller.kind, conn.caller.id if conn.caller.kind == "server"
                          else conn.caller.lname)
                   if conn.caller.kind in ("server", "player") and conn in self.conns else None)
        counted = conn.caller.kind != "server"
        if conn in self.conns and counted != conn.counted:
            conn.counted = counted
            self._count(conn.ip, 1 if counted else -1)

    def _hold(self, conn: Connection, slot: tuple[str, str] | None) -> None:
        if conn.slot == slot:
            return
        if conn.slot is not None:
            held = self.holders.get(conn.slot)
            if held is not None:
                held.discard(conn)
                if not held:
                    del self.holders[conn.slot]
            self.server_slots -= conn.slot[0] == "server"
        conn.slot = slot
        if slot is not None:
            self.holders.setdefault(slot, set()).add(conn)
            self.server_slots += slot[0] == "server"
            self.fanout.watch()

    # --- revocations (docs/RELAY.md) ------------------------------------------------------------
    def revoked(self, kind: str, who: str, why: str) -> None:
        """A key or session of ``who`` ended somewhere (fan-out reader, loop thread): re-check
        the connections that hold one of that server's keys or that player's sessions, in the
        pool, and end those whose credential no longer works."""
        conns = [c for c in self.holders.get((kind, who), ()) if not c.closed]
        if conns:
            self.recheck(conns, why)

    def recheck(self, conns: list[Connection], why: str) -> None:
        checks = [(c, c.caller, c.secret) for c in conns]
        fut = asyncio.get_running_loop().run_in_executor(self.pool, self._valid, checks)
        fut.add_done_callback(partial(self._end, checks, why))

    def _valid(self, checks: list[tuple[Connection, auth.Caller, str | None]]) -> list[bool]:
        out = []
        for _, caller, secret in checks:
            try:
                self.fresh(caller, secret)
                out.append(True)
            except Expired:
                out.append(False)
            except REDIS_OR_OS_ERRORS:
                out.append(True)  # unknown: the next command re-checks
        return out

    def _end(self, checks: list[tuple[Connection, auth.Caller, str | None]], why: str,
             fut: asyncio.Future) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        for (conn, caller, _), valid in zip(checks, fut.result(), strict=True):
            if valid or conn.closed or conn.caller is not caller:
                continue  # still good, gone, or it changed who it is meanwhile
            if conn.busy:  # its command ends first (a LOGOUT answers), then the re-check
                conn.recheck = why
            else:
                conn.revoke(why)

    def _count(self, ip: str, delta: int) -> None:
        left = self.per_ip.get(ip, 0) + delta
        if left > 0:
            self.per_ip[ip] = left
        else:
            self.per_ip.pop(ip, None)

    def forget(self, conn: Connection) -> None:
        """Stop pushes and mail notices to ``conn``."""
        if conn.caller.kind == "server":
            self.fanout.unsubscribe(conn)
        self.mailwatch.remove(conn)

    def release(self, conn: Connection) -> None:
        if conn in self.conns:
            self.conns.discard(conn)
            if conn.counted:
                self._count(conn.ip, -1)
        self._hold(conn, None)
        self.forget(conn)

    def gauges(self) -> tuple[dict[str, int], int]:
        """Connections by mode and bytes waiting for clients, for /metrics (loop thread)."""
        modes: dict[str, int] = {}
        queued = 0
        for conn in self.conns:
            mode = (conn.mode or "none").lower()
            modes[mode] = modes.get(mode, 0) + 1
            queued += conn.transport.get_write_buffer_size()
        return modes, queued

    async def sweep_idle(self) -> None:
        idle = self.config.relay_idle_timeout
        while idle:
            await asyncio.sleep(min(5.0, max(0.5, idle / 4)))
            cutoff = time.monotonic() - idle
            for conn in [c for c in self.conns if c.active < cutoff]:
                conn.send(p.closing(p.IDLE_TIMEOUT, conn.human))
                conn.close()

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self, host: str | None = None, port: int | None = None) -> int:
        """Listen; returns the port (pass port 0 for a free one). The legacy UDP verify is
        bound on the same host at LEGACY_UDP_PORT (0: none)."""
        loop = asyncio.get_running_loop()
        try:  # revocations from now on (an older one was already in force at AUTH time)
            self.fanout.revoke_cursor = await loop.run_in_executor(self.pool, self._revoke_tail)
        except REDIS_OR_OS_ERRORS:
            log.warning("relay: revocations unreadable at start; reading them all")
        host = host or self.config.relay_host
        self.server = await loop.create_server(
            lambda: Connection(self), host,
            self.config.relay_port if port is None else port, backlog=4096, reuse_address=True)
        self.tasks = [loop.create_task(t) for t in
                      (self.fanout.run(), self.mailwatch.run(), self.sweep_idle())]
        await self.start_legacy_udp(host)
        return self.server.sockets[0].getsockname()[1]

    async def start_legacy_udp(self, host: str) -> None:
        """Bind the released core's UDP verify (relay/legacy_udp.py); a port that cannot be
        bound is one warning, and the relay runs without it."""
        udp_port = self.config.legacy_udp_port
        if not udp_port:
            return
        try:
            _, self.legacy_udp = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: LegacyUDP(partial(modbuilds.versions, self.redis), self.pool),
                local_addr=(host, udp_port))
        except OSError as exc:
            log.warning("LEGACY_UDP_PORT %s on %s cannot be bound (%s): running without the "
                        "legacy UDP verify", udp_port, host, exc.strerror or exc)

    async def stop(self, grace: float = 2.0) -> None:
        """Stop listening, tell every client, flush what is queued (up to ``grace`` s), close."""
        if self.server is not None:
            self.server.close()
        if self.legacy_udp is not None:
            self.legacy_udp.close()
        await self.fanout.stop()
        for task in self.tasks:
            task.cancel()
        await asyncio.wait(self.tasks, timeout=1)
        for conn in list(self.conns):
            conn.send(p.closing(p.SHUTTING_DOWN, conn.human))
            conn.close()
        deadline = time.monotonic() + grace
        while self.conns and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.conns):
            conn.transport.abort()
        await self.fanout.close()
        self.pool.shutdown(wait=False, cancel_futures=True)


class Connection(Session, asyncio.Protocol):
    __slots__ = ("transport", "reader", "active", "busy", "pending", "closed", "out_paused",
                 "counted", "slot", "recheck", "handshake")

    def __init__(self, hub: Relay) -> None:
        Session.__init__(self, hub, "")
        self.reader = p.LineReader()
        self.active = time.monotonic()
        self.busy = self.closed = self.out_paused = False
        self.counted = False  # toward RELAY_MAX_PER_IP (see Relay.recount)
        self.slot: tuple[str, str] | None = None  # its key in Relay.holders
        self.recheck: str | None = None  # a revocation to re-check once its command ends
        self.handshake: asyncio.TimerHandle | None = None
        self.pending: list[bytes | None] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.ip = str(peer[0]) if peer else "?"
        refusal = self.hub.admit(self)
        if refusal is not None:
            self.closed = True
            transport.write(refusal)
            transport.close()
            return
        transport.set_write_buffer_limits(high=OUT_HIGH)
        transport.write(p.GREETING)
        if self.hub.config.relay_handshake_timeout:
            self.handshake = asyncio.get_running_loop().call_later(
                self.hub.config.relay_handshake_timeout, self._handshake_over)

    def _handshake_over(self) -> None:
        """RELAY_HANDSHAKE_TIMEOUT passed: without a mode, the slot goes back (docs/RELAY.md)."""
        self.handshake = None
        if self.mode is None and not self.closed:
            self._write(p.closing(p.HANDSHAKE_TIMEOUT, False))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.handshake is not None:
            self.handshake.cancel()
            self.handshake = None
        self.hub.release(self)

    def revoke(self, why: str) -> None:
        """The key or session this connection used ended: say why, close (docs/RELAY.md)."""
        self.hub.forget(self)
        self.caller, self.secret = ANONYMOUS, None
        self.hub.recount(self)
        self._write(p.closing(p.REVOKED.format(p.REVOKED_WHY.get(why, p.REVOKED_ANY)),
                              self.human, "unauthenticated"))
        self.close()

    def _become(self, caller: auth.Caller, secret: str, position: str, msg: str,
                data: Any) -> Step:
        """As Session's, but a server key holds at most RELAY_CONNECTIONS_PER_SERVER
        connections: one more is refused and closed (its own slots are full)."""
        if caller.kind == "server" and not self.hub.server_room(caller.id, self):
            cap = self.hub.config.relay_connections_per_server
            return self.fail(p.SERVER_SLOTS.format(caller.id, cap), "rate_limited", close=True)
        return super()._become(caller, secret, position, msg, data)

    def result(self, name: str, body: Any, names: dict[str, str] | None = None) -> Step:
        """As Session's; a player who logs out (or deletes their account) on this connection
        goes back to anonymous here, so the revocation it causes does not close it."""
        if name in OWN_ACTS and self.caller.kind == "player":
            self.hub.forget(self)
            self.caller, self.secret = ANONYMOUS, None
            self.hub.recount(self)
        return super().result(name, body, names)

    def pause_writing(self) -> None:
        """OUT_HIGH bytes wait for the client (a large reply, a replay): read no more commands
        until it has taken them. Pushes meanwhile queue up to RELAY_SEND_BUFFER_MAX (``send``)."""
        self.out_paused = True
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.out_paused = False
        if not self.closed:
            self._continue()

    def data_received(self, data: bytes) -> None:
        lines = self.reader.feed(data)
        if any(line is not None and line.strip() for line in lines):
            self.active = time.monotonic()  # complete non-empty lines only (docs/RELAY.md)
        if self.busy or self.out_paused:
            self.pending = (self.pending or []) + lines
            self.transport.pause_reading()
        elif lines:
            self._process(lines)

    def _process(self, lines: list[bytes | None]) -> None:
        for i, line in enumerate(lines):
            if not self._apply(self.on_line(line)):
                return
            if self.busy or self.out_paused:
                if i + 1 < len(lines):
                    self.pending = lines[i + 1:] + (self.pending or [])
                self.transport.pause_reading()
                return

    def _apply(self, step: Step) -> bool:
        """Write, close, or start the step's work; False once the connection is closing."""
        if step.out:
            self._write(step.out)
        if step.close:
            self.close()
        if self.closed:
            return False
        if step.work is not None:
            self.busy = True
            fut = asyncio.get_running_loop().run_in_executor(self.hub.pool, step.work)
            fut.add_done_callback(partial(self._done, step.then))
        return True

    def _done(self, then: Any, fut: asyncio.Future) -> None:
        self.busy = False
        if self.closed or fut.cancelled():
            return
        try:
            step = then(fut.result())
        except Exception as exc:  # the barrier: ApiError, Redis down, or a bug -> error line
            step = self.failed(exc)
        if not self._apply(step):
            return
        if self.recheck is not None:  # a revocation came while the command ran
            why, self.recheck = self.recheck, None
            if self.caller.kind in ("server", "player"):
                self.hub.recheck([self], why)
        self._continue()

    def _continue(self) -> None:
        """Go on with the lines read while busy or paused, then read again."""
        if self.busy or self.out_paused:
            return
        pending, self.pending = self.pending, None
        if pending:
            self._process(pending)
        if not self.busy and not self.out_paused and not self.closed:
            self.transport.resume_reading()

    def send(self, data: bytes) -> None:
        """A push: a client with RELAY_SEND_BUFFER_MAX bytes already waiting is not reading;
        drop it (a server then RESUMEs)."""
        if self.closed:
            return
        if self.transport.get_write_buffer_size() + len(data) > \
                self.hub.config.relay_send_buffer_max:
            log.info("dropping %s: not reading", self.ip)
            metrics.relay().dropped.inc()
            self.closed = True
            self.transport.abort()
            return
        self.transport.write(data)
        metrics.relay().pushes.inc()

    def command(self, name: str, args: Any, key: str | None, as_: str | None = None) -> Step:
        op = self.hub.commands.get(name)
        metrics.relay().commands.labels(op.name if op else name if name in BUILTINS
                                        else "unknown").inc()
        return super().command(name, args, key, as_)

    def _write(self, data: bytes) -> None:
        """A reply to the client's own command (reading pauses while much waits)."""
        if not self.closed:
            self.transport.write(data)

    def send_replay(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    async def drained(self) -> None:
        """Return once the write buffer is at or below its low-water mark (or closed)."""
        low = self.transport.get_write_buffer_limits()[0]
        while not self.closed and self.transport.get_write_buffer_size() > low:
            await asyncio.sleep(DRAIN_POLL)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()


def raise_nofile_limit() -> int:
    """Raise the soft open-file limit to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def serve(config: Config) -> None:
    """Run one relay process until SIGTERM or SIGINT."""
    relay = Relay(config)
    port = await relay.start()
    log.info("relay listening on %s:%s", config.relay_host, port)
    if relay.legacy_udp is not None:
        log.info("legacy UDP verify on %s:%s", config.relay_host, config.legacy_udp_port)
    loop = asyncio.get_running_loop()
    metrics.serve(config.relay_metrics_port, config.metrics_token,  # a daemon thread
                  metrics.relay_body(loop, relay.gauges), "RELAY_METRICS_PORT",
                  config.relay_host)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("relay stopping")
    await relay.stop()
