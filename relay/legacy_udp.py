"""The released (server)² core's UDP verify (SPEC §13), served by the relay process.

The core sends one datagram to ``LEGACY_UDP_PORT`` (53472, the port it hard-codes) at start and
waits for the answer. Each datagram gets at most one answer, of at most ANSWER_MAX bytes, sent
from the bound socket to the datagram's sender only, as exact bytes with no line end:

- ``ping`` -> ``pong``; ``verify`` -> ``sendChecksum``;
- 40 hex digits (the SHA-1 of the core file, either case) -> the version registered for it
  with ``mod.build.set``, else ``unknown``;
- anything else: no answer.

No state per sender: nothing is remembered about who sent what. The known builds are read from
Redis in the relay's thread pool, at most one read at a time, and the table read is used for
FRESH seconds, so a flood of checksum datagrams costs Redis at most one read per FRESH seconds
(a new or deleted build is answered within FRESH seconds). Datagrams that arrive while a read
runs wait for it, at most WAITING_MAX of them (beyond: no answer). While Redis is unreachable the
last table read is used; before any read succeeded a checksum gets no answer (the core then
times out, as it would without a backend) rather than a wrong ``unknown``.
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
FRESH = 2.0  # seconds a table of known builds is answered from before it is read again
WAITING_MAX = 1024  # checksum datagrams waiting for a read of the table


class LegacyUDP(asyncio.DatagramProtocol):
    """The datagram endpoint. ``read()`` (blocking, run in ``pool``) returns sha1 -> version."""

    def __init__(self, read: Callable[[], dict[str, str]], pool: Executor,
                 fresh: float | None = None) -> None:
        self.read, self.pool = read, pool
        self.fresh = FRESH if fresh is None else fresh
        self.transport: asyncio.DatagramTransport | None = None
        self.table: dict[str, str] | None = None
        self.read_at = float("-inf")
        self.reading = False
        self.failing = False
        self.waiting: list[tuple[str, Any]] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        fixed = FIXED.get(data)
        if fixed is not None:
            self.answer(fixed, addr)
        elif len(data) == 40 and CHECKSUM.fullmatch(data):
            sha1 = data.decode("ascii").lower()
            if self.table is not None and time.monotonic() - self.read_at < self.fresh:
                self.answer(self.version(sha1), addr)
            elif len(self.waiting) < WAITING_MAX:
                self.waiting.append((sha1, addr))
                self._read()
            else:
                self.answer(None, addr)
        else:
            self.answer(None, addr)  # anything else: no answer

    def error_received(self, exc: Exception) -> None:
        """An ICMP error for an earlier answer (the sender went away): nothing to do."""

    def version(self, sha1: str) -> bytes:
        found = (self.table or {}).get(sha1)
        return found.encode() if found else UNKNOWN

    def answer(self, data: bytes | None, addr: Any) -> None:
        """Send ``data`` to ``addr`` (None, or more than ANSWER_MAX bytes: no answer)."""
        if data is None or self.transport is None or len(data) > ANSWER_MAX:
            metrics.relay().udp.labels("none").inc()
            return
        metrics.relay().udp.labels(LABELS.get(data, "version")).inc()  # counted before sent
        self.transport.sendto(data, addr)

    def _read(self) -> None:
        if self.reading:
            return
        self.reading = True
        fut = asyncio.get_running_loop().run_in_executor(self.pool, self.read)
        fut.add_done_callback(self._read_done)

    def _read_done(self, fut: asyncio.Future) -> None:
        self.reading = False
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is None:
            self.table, self.read_at, self.failing = fut.result(), time.monotonic(), False
        elif not self.failing:  # one line per outage, not one per datagram
            self.failing = True
            log.warning("legacy UDP: reading the known builds failed (%s); answering from "
                        "the last table read", type(exc).__name__)
        waiting, self.waiting = self.waiting, []
        for sha1, addr in waiting:  # Redis unreachable since the start: no answer
            self.answer(self.version(sha1) if self.table is not None else None, addr)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
