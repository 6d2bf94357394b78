"""The released (server)² core's UDP verify (docs/RELAY.md), served by the relay process.

The core sends one datagram to ``LEGACY_UDP_PORT`` (53472, the port it hard-codes) at start and
waits for the answer. Each datagram gets at most one answer, of at most ANSWER_MAX bytes, sent
from the bound socket to the datagram's sender only, as exact bytes with no line end:

- ``ping`` -> ``pong``; ``verify`` -> ``sendChecksum`` (at once, without Redis);
- 40 hex digits (the SHA-1 of the core file, either case) -> the version registered for it
  with ``mod.build.set``, else ``unknown``;
- anything else: no answer.

No state per sender: nothing is remembered about who sent what. A checksum is answered from a
read of the known builds that started after it arrived, so a build just set or deleted is
answered right. Reads run in the relay's thread pool, one at a time, within a budget of
READS_PER_SECOND after a burst of READS_BURST (a token bucket): the checksums that arrive
meanwhile wait (at most WAITING_MAX; beyond, no answer) and are answered together by the next
read. However many datagrams come, the verify costs Redis at most READS_PER_SECOND reads a
second (plus the burst). While Redis is unreachable the last table read
is answered from; before any read succeeded a checksum gets no answer (the core then times out,
as it would without a backend) rather than a wrong ``unknown``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from shared import metrics

log = logging.getLogger("ssm.relay")

ANSWER_MAX = 64  # bytes: never an amplifier
FIXED = {b"ping": b"pong", b"verify": b"sendChecksum"}
UNKNOWN = b"unknown"
LABELS = {b"pong": "pong", b"sendChecksum": "sendChecksum", UNKNOWN: "unknown"}  # else version
CHECKSUM = re.compile(rb"[0-9a-fA-F]{40}")
READS_PER_SECOND = 20  # reads of the known builds, sustained (a token bucket) ...
READS_BURST = 5  # ... after a burst of this many (a few checksums in a row get no wait)
WAITING_MAX = 1024  # checksum datagrams waiting for the next read


class LegacyUDP(asyncio.DatagramProtocol):
    """The datagram endpoint. ``read()`` (blocking, run in ``pool``) returns sha1 -> version."""

    def __init__(self, read: Callable[[], dict[str, str]], pool: Executor) -> None:
        self.read, self.pool = read, pool
        self.transport: asyncio.DatagramTransport | None = None
        self.table: dict[str, str] | None = None  # the last table read, for Redis outages
        self.tokens, self.refilled = float(READS_BURST), time.monotonic()  # the read budget
        self.busy = False  # a read runs, or is scheduled
        self.failing = False
        self.waiting: list[tuple[str, Any]] = []
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        fixed = FIXED.get(data)
        if fixed is not None:
            self.answer(fixed, addr)
        elif len(data) == 40 and CHECKSUM.fullmatch(data) and len(self.waiting) < WAITING_MAX:
            self.waiting.append((data.decode("ascii").lower(), addr))
            if not self.busy:
                self._schedule()
        else:
            self.answer(None, addr)  # anything else (or too many waiting): no answer

    def error_received(self, exc: Exception) -> None:
        """An ICMP error for an earlier answer (the sender went away): nothing to do."""

    def answer(self, data: bytes | None, addr: Any) -> None:
        """Send ``data`` to ``addr`` (None, or more than ANSWER_MAX bytes: no answer)."""
        if data is None or self.transport is None or len(data) > ANSWER_MAX:
            metrics.relay().udp.labels("none").inc()
            return
        metrics.relay().udp.labels(LABELS.get(data, "version")).inc()  # counted before sent
        self.transport.sendto(data, addr)

    def _schedule(self) -> None:
        """Start the next read now if the budget has one, else once it has."""
        if self.closed:
            return
        self.busy = True
        now = time.monotonic()
        self.tokens = min(float(READS_BURST),
                          self.tokens + (now - self.refilled) * READS_PER_SECOND)
        self.refilled = now
        if self.tokens >= 1:
            self._start()
        else:
            asyncio.get_running_loop().call_later((1 - self.tokens) / READS_PER_SECOND,
                                                  self._schedule)

    def _start(self) -> None:
        if self.closed:
            return
        batch, self.waiting = self.waiting, []
        self.tokens -= 1
        fut = asyncio.get_running_loop().run_in_executor(self.pool, self.read)
        fut.add_done_callback(lambda f: self._done(f, batch))

    def _done(self, fut: asyncio.Future, batch: list[tuple[str, Any]]) -> None:
        if fut.cancelled() or self.closed:
            return
        exc = fut.exception()
        if exc is None:
            self.table, self.failing = fut.result(), False
        elif not self.failing:  # one line per outage, not one per datagram
            self.failing = True
            log.warning("legacy UDP: reading the known builds failed (%s); answering from "
                        "the last table read", type(exc).__name__)
        for sha1, addr in batch:
            if self.table is None:  # Redis unreachable since the start: no answer
                self.answer(None, addr)
            else:
                found = self.table.get(sha1)
                self.answer(found.encode() if found else UNKNOWN, addr)
        if self.waiting:
            self._schedule()
        else:
            self.busy = False

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
