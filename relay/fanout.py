"""Live pushes: one task per relay process reads the inboxes of the servers connected to it.

A single ``XREAD BLOCK`` on one dedicated Redis connection covers every subscribed inbox, each
from this process's cursor; each entry is rendered once and written to every connection of its
server. A new subscription interrupts the blocked read (``CLIENT UNBLOCK``) so it is covered at
once. Redis going away is retried with backoff; cursors survive, so nothing is skipped.

Per connection: ``last_id`` (the newest entry it was sent) and ``replaying``. ``RESUME`` (and a
subscription that starts behind this process's cursor) replays from the stream in batches in the
thread pool while live delivery to that connection waits, so a connection sees its entries in
order, each once, with no gap between replay and live.

The same read also covers the revocations stream (``keys.revocations()``, also in ``{msg}``)
while this process holds any authenticated connection: each entry goes to ``on_revoke``
(relay.server.Relay.revoked), which re-checks the connections that used that key or session.

On a Redis Cluster every inbox shares the ``{msg}`` hash tag, so one slot holds them all and one
``XREAD BLOCK`` still covers every subscribed inbox: the reader and its ``CLIENT UNBLOCK``
connection both go to the node that serves that slot. After any error (the node died and its
replica took over, a MOVED after the slot moved) the slot map is read again and both
connections follow the slot to its new node, with no restart.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from relay import protocol as p
from shared import keys, metrics
from shared.redis_conn import REDIS_OR_OS_ERRORS, is_cluster
from shared.storage import messages

log = logging.getLogger("ssm.relay")

BLOCK_MS = 5000
COUNT = 100  # entries per inbox per read
REPLAY_BATCH = 100  # entries read at once; written one by one as the client reads
BACKOFF_MAX = 5.0
BAN_EVENTS = frozenset({"ban", "unban"})


def render(entries: list[tuple[str, dict[str, str]]], cache: dict[Any, bytes] | None = None
           ) -> list[tuple[tuple[int, int], bytes]]:
    """Push lines for inbox entries. ``cache`` shares the work between inboxes: a broadcast
    puts the same entry (same id, same payload) in every inbox."""
    out = []
    for sid, f in entries:
        memo = (sid, f.get("d"))
        line = cache.get(memo) if cache is not None else None
        if line is None:
            try:
                event, entry = messages.event(f), messages.entry(sid, f)
                # a ban or unban push carries the ban itself (README "Moderation")
                data = entry["ban"] if event in BAN_EVENTS else entry
                line = p.push(event, sid, data)
            except Exception:  # a malformed entry: skip it, keep pushing the others
                log.warning("fan-out: skipping malformed inbox entry %s", sid, exc_info=True)
                continue
            if cache is not None:
                cache[memo] = line
        out.append((p.stream_key(sid), line))
    return out


class FanOut:
    def __init__(self, url: str, sync_redis: Any, pool: Any) -> None:
        self.url, self.r, self.pool = url, sync_redis, pool
        self.subs: dict[str, set[Any]] = {}  # server id -> connections
        self.cursor: dict[str, str] = {}  # server id -> last id read by this process
        self.wake = asyncio.Event()
        self.dirty = False
        self.blocked = False
        self.reader: Any = None
        self.reader_id: int | None = None
        self.ctl: Any = None
        self.node_url = url  # where the inboxes are: the {msg} slot's node on a cluster
        self.moved = False  # an error happened: on a cluster, read the slot map again
        self.poking = False
        self.stopping = False
        self.replays: set[asyncio.Task] = set()
        # revocations: read while ``holding()`` (set by the relay); cursor set at start
        self.on_revoke: Any = None  # (kind, who, why) -> None, on the loop
        self.holding: Any = lambda: False
        self.revoke_cursor = "0-0"
        self.reading: dict[str, str] = {}  # the streams of the read in progress

    # --- subscriptions (loop thread) -------------------------------------------------------
    def subscribe(self, conn: Any, server_id: str, tail: str) -> None:
        conn.tail = conn.last_id = tail
        conns = self.subs.setdefault(server_id, set())
        conns.add(conn)
        mine = self.cursor.setdefault(server_id, tail)
        if p.stream_key(mine) > p.stream_key(tail):
            self.resume(conn, tail)  # this process already read past where conn starts
        self.dirty = True
        self.wake.set()
        if self.blocked and not self.poking:
            asyncio.get_running_loop().create_task(self._poke())

    def unsubscribe(self, conn: Any) -> None:
        conn.replay_gen += 1  # a running replay of this server's inbox stops here
        conn.replaying = False
        server_id = conn.caller.id
        conns = self.subs.get(server_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.subs[server_id]
                self.cursor.pop(server_id, None)
                self.dirty = True

    def resume(self, conn: Any, after: str) -> None:
        """Replay what the inbox keeps after ``after``, then continue live (see ``_replay``)."""
        conn.replay_gen += 1
        conn.replaying = True
        task = asyncio.get_running_loop().create_task(self._replay(conn, after, conn.replay_gen))
        self.replays.add(task)
        task.add_done_callback(self.replays.discard)

    async def _replay(self, conn: Any, cursor: str, gen: int) -> None:
        """Read a batch in the pool, write it entry by entry as the client takes them; again
        until the stream has nothing more. Stops when ``conn`` closes or a newer replay starts."""
        skip = (p.stream_key(conn.tail), p.stream_key(conn.last_id))  # already sent live
        server_id = conn.caller.id
        seen = conn.last_id  # the newest id this replay actually read
        loop = asyncio.get_running_loop()
        while not conn.closed and conn.replay_gen == gen:
            before = self.cursor.get(server_id, cursor)  # what the live reader had read
            try:
                entries = await loop.run_in_executor(self.pool, messages.read, self.r,
                                                     server_id, cursor, REPLAY_BATCH)
            except REDIS_OR_OS_ERRORS as exc:
                log.warning("replay read failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(0.5)
                continue
            if conn.closed or conn.replay_gen != gen:
                return
            for entry in entries:
                # One entry at a time, as the client takes them (docs/RELAY.md): never more than
                # the low-water mark plus one line waits for it, whatever the batch holds.
                for key, line in render([entry]):
                    if not skip[0] < key <= skip[1]:
                        conn.send_replay(line)
                await conn.drained()
                if conn.closed or conn.replay_gen != gen:
                    return
            if entries:
                cursor = entries[-1][0]
                seen = max(seen, cursor, key=p.stream_key)
                continue
            # The stream held nothing more after ``cursor`` when read. Entries the live reader
            # had read before that read but the stream no longer has (inbox gone, trimmed) are
            # skipped rather than asked for again and again.
            if p.stream_key(cursor) < p.stream_key(before):
                cursor = before
            mine = self.cursor.get(server_id, cursor)
            if p.stream_key(cursor) >= p.stream_key(mine):
                # never beyond what was read or this process's cursor (RESUME <future id> must
                # not silence later pushes); no await since the read, so no live batch between
                conn.last_id = max(seen, min(cursor, mine, key=p.stream_key), conn.last_id,
                                   key=p.stream_key)
                conn.replaying = False
                return

    def _dispatch(self, server_id: str, entries: list[tuple[str, dict[str, str]]],
                  cache: dict[Any, bytes]) -> None:
        conns = self.subs.get(server_id)
        if not conns or not entries:
            return
        self.cursor[server_id] = last = entries[-1][0]
        lines = render(entries, cache)
        for conn in list(conns):
            if conn.replaying:
                continue
            mark = p.stream_key(conn.last_id)
            for key, line in lines:
                if key > mark:
                    conn.send(line)
            conn.last_id = max(last, conn.last_id, key=p.stream_key)
        metrics.relay().pushed(key for key, _ in lines)  # fan-out lag of each entry

    def _revoked(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        if not entries:
            return
        self.revoke_cursor = entries[-1][0]
        for _, f in entries:
            try:
                self.on_revoke(f.get("k", ""), f.get("w", ""), f.get("r", ""))
            except Exception:  # one bad entry must not stop pushes
                log.warning("fan-out: skipping a revocation", exc_info=True)

    def watch(self) -> None:
        """An authenticated connection appeared: make sure the reader covers revocations (it
        waits while it has nothing to read; a blocked read is interrupted)."""
        self.wake.set()
        if self.blocked and not self.poking and keys.revocations() not in self.reading:
            self.dirty = True
            asyncio.get_running_loop().create_task(self._poke())

    # --- the reader task --------------------------------------------------------------------
    async def run(self) -> None:
        backoff = 0.1
        while not self.stopping:
            try:
                revoking = self.on_revoke is not None and self.holding()
                if not self.subs and not revoking:
                    self.wake.clear()
                    await self.wake.wait()
                    continue
                if self.reader is None:
                    await self._locate()
                    self.reader = aredis.Redis.from_url(
                        self.node_url, decode_responses=True, single_connection_client=True,
                        socket_timeout=BLOCK_MS / 1000 + 10, socket_connect_timeout=5,
                        retry=Retry(NoBackoff(), 0))  # a reconnect must change reader_id
                    self.reader_id = await self.reader.client_id()
                    continue  # re-check: stopping or subscriptions may have changed
                streams = {keys.inbox(s): self.cursor[s] for s in self.subs}
                if revoking:
                    streams[keys.revocations()] = self.revoke_cursor
                self.reading = streams
                self.dirty = False
                self.blocked = True
                try:
                    got = await self.reader.xread(streams, count=COUNT, block=BLOCK_MS)
                finally:
                    self.blocked = False
                prefix = len(keys.inbox_prefix())
                cache: dict[Any, bytes] = {}
                for key, entries in got or []:
                    if key == keys.revocations():
                        self._revoked(entries)
                    else:
                        self._dispatch(key[prefix:], entries, cache)
                backoff = 0.1
            except REDIS_OR_OS_ERRORS as exc:
                if self.stopping:
                    return
                log.warning("fan-out: redis error (%s); retrying in %.1f s",
                            type(exc).__name__, backoff)
                self.moved = True
                await self._drop_reader()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    async def _locate(self) -> None:
        """On a cluster: point ``node_url`` at the node serving the inboxes' slot (the slot map
        read again after an error), and drop the CLIENT UNBLOCK connection if it moved."""
        if not is_cluster(self.r):
            return
        loop = asyncio.get_running_loop()
        url = await loop.run_in_executor(self.pool, self._inbox_node, self.moved)
        self.moved = False
        if url != self.node_url:
            log.info("fan-out: inboxes served by %s", urlsplit(url).netloc.rpartition("@")[2])
            self.node_url = url
            ctl, self.ctl = self.ctl, None
            if ctl is not None:
                await _close(ctl)

    def _inbox_node(self, refresh: bool) -> str:
        """The URL of the node serving the ``{msg}`` slot (REDIS_URL's scheme and credentials,
        that node's address)."""
        nodes = self.r.nodes_manager
        if refresh:
            nodes.initialize()
        node = nodes.get_node_from_slot(self.r.keyslot(keys.inbox_prefix()))
        parts = urlsplit(self.url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@" if userinfo else ""
        return urlunsplit((parts.scheme, f"{netloc}{node.host}:{node.port}", "", "", ""))

    async def _poke(self) -> None:
        """Interrupt the blocked read so it picks up new subscriptions now."""
        self.poking = True
        try:
            if self.ctl is None:
                self.ctl = aredis.Redis.from_url(self.node_url, socket_timeout=5,
                                                 socket_connect_timeout=5)
            for _ in range(50):
                if not (self.dirty and self.blocked and self.reader_id is not None):
                    return
                if await self.ctl.client_unblock(self.reader_id):
                    return
                await asyncio.sleep(0.01)  # not blocked yet: the read is on its way
        except REDIS_OR_OS_ERRORS as exc:
            log.warning("fan-out: unblock failed (%s)", type(exc).__name__)
        finally:
            self.poking = False

    async def _drop_reader(self) -> None:
        reader, self.reader, self.reader_id = self.reader, None, None
        if reader is not None:
            await _close(reader)

    async def stop(self) -> None:
        """Make the reader task return (wake it if idle, unblock it if reading)."""
        self.stopping = True
        self.wake.set()
        if self.blocked and self.reader_id is not None:
            self.dirty = True
            await self._poke()

    async def close(self) -> None:
        self.stopping = True
        for task in list(self.replays):
            task.cancel()
        await self._drop_reader()
        if self.ctl is not None:
            await _close(self.ctl)


async def _close(client: Any) -> None:
    try:
        await client.aclose()
    except REDIS_OR_OS_ERRORS:
        pass
