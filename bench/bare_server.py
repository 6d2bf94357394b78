"""The ceiling for the relay benchmark: a bare asyncio line server, nothing else.

``python -m bench.bare_server PORT``: greets each connection with one line and answers every
line it receives with one line. Same asyncio.Protocol style and line framing as the relay, no
protocol, no sessions, no Redis: what one Python process on this machine can do at best.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from relay.server import raise_nofile_limit

GREETING = b'{"state": "OK", "msg": "CONNECTED bare"}\r\n'
ANSWER = b'{"state": "OK", "msg": "Hello, world!"}\r\n'


class Bare(asyncio.Protocol):
    __slots__ = ("transport", "buf")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = b""
        transport.write(GREETING)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        n = buf.count(b"\n")
        self.buf = buf[buf.rfind(b"\n") + 1:] if n else buf
        if n:
            self.transport.write(ANSWER * n)  # type: ignore[attr-defined]


async def serve(port: int, host: str = "127.0.0.1") -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Bare, host, port, backlog=4096, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main() -> None:
    raise_nofile_limit()
    asyncio.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
